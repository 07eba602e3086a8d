"""The real service for integration tests: `hmm-updater api` and `hmm-updater worker` as processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests import testbed

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    redis_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    api_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token, when the stack runs with UPDATER_API_TOKEN."""
        token = self.env.get("UPDATER_API_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _spawn(self, command: str, label: str, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "REDIS_URL": self.redis_url, "UPDATER_STATE_DIR": str(self.workdir / "state"),
               "UPDATER_SETTLE_SECONDS": "1", "UPDATER_HOST": "127.0.0.1",
               "UPDATER_PORT": str(self.api_port), **self.env, **extra_env}
        out = (self.workdir / f"{label}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "worker.cli", command], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.processes.append(process)
        return process

    def start_api(self) -> None:
        self.api_port = testbed.free_port()
        self._spawn("api", "api", {})
        testbed.wait_for(lambda: httpx.get(f"{self.url}/health").status_code in (200, 503), what="the API")

    def start_worker(self, label: str = "worker", **extra_env: str) -> subprocess.Popen[bytes]:
        return self._spawn("worker", label, extra_env)

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        testbed.wait_for(lambda: self.get("/health").json()["workers"] == count, timeout=timeout,
                         what=f"{count} live workers")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=30)

    def post(self, path: str, body: dict[str, Any], timeout: float = 30) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers, timeout=timeout)

    def wait_for_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        testbed.wait_for(lambda: self.get(f"/jobs/{job_id}").json()["status"] in ("finished", "failed"),
                         timeout=timeout, interval=0.25, what=f"job {job_id}")
        job: dict[str, Any] = self.get(f"/jobs/{job_id}").json()
        return job

    def websocket(self, query: str = "") -> ClientConnection:
        token = self.env.get("UPDATER_API_TOKEN")
        return connect(f"ws://127.0.0.1:{self.api_port}/ws/logs{query}", open_timeout=10,
                       subprotocols=[f"bearer.{token}"] if token else None)

    def log_of(self, label: str) -> str:
        return (self.workdir / f"{label}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class LogCollector(threading.Thread):
    """Collects every message a WebSocket client receives, in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.entries: list[dict[str, Any]] = []
        self.error: Exception | None = None  # why it stopped, other than a normal close

    def run(self) -> None:
        try:
            for message in self.ws:
                self.entries.append(json.loads(message))
        except Exception as exc:
            self.error = exc

    def of_job(self, job_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["job_id"] == job_id]
