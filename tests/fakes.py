"""Test doubles shared by several test modules."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from worker.inventory import ContainerInfo


class FakeResolver:
    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def latest(self, current_image: str) -> str:
        self.asked.append(current_image)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def close(self) -> None:
        pass


class _CommitsHandler(BaseHTTPRequestHandler):
    """GitHub's `GET /repos/{owner}/{repo}/commits`, newest first."""

    server: CommitsStandIn

    def do_GET(self) -> None:
        body = json.dumps([{"sha": sha} for sha in self.server.shas]).encode()
        self.send_response(200 if "/commits" in self.path else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class CommitsStandIn(ThreadingHTTPServer):
    """A local stand-in for GitHub's commits endpoint on 127.0.0.1; `shutdown()` and `server_close()` it."""

    def __init__(self, shas: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _CommitsHandler)
        self.shas = shas
        self.url = f"http://127.0.0.1:{self.server_port}"


def github_commits(shas: list[str]) -> CommitsStandIn:
    server = CommitsStandIn(shas)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def inventory_entry(name: str, image: str, labels: dict[str, str] | None = None) -> ContainerInfo:
    """One container as the worker publishes it for the API."""
    return ContainerInfo(name=name, id="c" * 64, image=image, image_id="sha256:" + "a" * 64, state="running",
                         health=None, created="2026-01-01T00:00:00Z", started_at=None, labels=labels or {})
