"""Polls the app's published port and records when it answered, to find the longest silence."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from dataclasses import dataclass

PROBE_INTERVAL = 0.010
PROBE_TIMEOUT = 0.25
# An accepted connection that waits this long for its answer stalled: docker-proxy took it, but its own
# connection to the container hung (see results.md).
STALL_SECONDS = 0.1


@dataclass(frozen=True)
class Probe:
    version: str | None  # what the app served; None when nothing answered with HTTP 200
    waited: float  # from the accepted connection to the answer or the give-up; 0 when refused

    @property
    def stalled(self) -> bool:
        return self.waited >= STALL_SECONDS


def probe(port: int) -> Probe:
    """Ask the test app on 127.0.0.1:port for its version over a fresh connection."""
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT)
    except OSError:
        return Probe(None, 0.0)
    accepted = time.monotonic()
    reply = b""
    try:
        with conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            while chunk := conn.recv(4096):
                reply += chunk
    except OSError:
        pass
    waited = time.monotonic() - accepted
    if not reply.startswith(b"HTTP/1") or b" 200 " not in reply.split(b"\r\n", 1)[0]:
        return Probe(None, waited)
    body = reply.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
    return Probe(body.removeprefix("version="), waited)


def ask_version(port: int) -> str | None:
    return probe(port).version


class Prober(threading.Thread):
    """Asks every PROBE_INTERVAL; the downtime is the longest time between two answers."""

    def __init__(self, port: int) -> None:
        super().__init__(name=f"prober-{port}", daemon=True)
        self.port = port
        self.answers: list[tuple[float, str]] = []  # (monotonic time the answer arrived, version)
        self.probes = 0
        self.stalled_seconds = 0.0  # spent in stalled probes
        self._halt = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self._halt.is_set():
            answer = probe(self.port)
            self.probes += 1
            self.stalled_seconds += answer.waited if answer.stalled else 0.0
            if answer.version is not None:
                self.answers.append((time.monotonic(), answer.version))
            next_at += PROBE_INTERVAL
            delay = next_at - time.monotonic()
            if delay > 0:
                self._halt.wait(delay)
            else:
                next_at = time.monotonic()

    def wait_for(self, version: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.answers and self.answers[-1][1] == version):
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.port} never served version {version}")
            time.sleep(PROBE_INTERVAL)

    def finish(self) -> float:
        """Stop probing; the longest gap between consecutive answers, in seconds."""
        self._halt.set()
        self.join()
        times = [at for at, _ in self.answers]
        if len(times) < 2:
            raise RuntimeError(f"port {self.port} answered {len(times)} times in {self.probes} probes")
        return max(later - earlier for earlier, later in itertools.pairwise(times))
