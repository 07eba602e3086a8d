"""The updater as a user runs it: `hmm-updater api` and `hmm-updater worker` processes on loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import testbed

REPO = Path(__file__).resolve().parent.parent
# The health gate's settle period runs while the new container already serves: it adds end-to-end time,
# not downtime. One second keeps the runs short.
SETTLE_SECONDS = 1
# The updater refuses containers that are neither allow-listed nor labelled so (worker/policy.py).
ENABLE_LABEL = "hmm-updater.enable"
# A REDIS_URL query that lifts redis-py's asyncio connection pool limit (100 by default) without code changes.
LIFTED_POOL = "max_connections=2000"
STOP_GRACE_SECONDS = 15.0


def app_labels(run_id: str) -> dict[str, str]:
    """Labels of every app container the bench creates: found again by the run, updatable by the updater."""
    return {"hmmb.run": run_id, ENABLE_LABEL: "true"}


@dataclass
class Updater:
    redis_url: str
    workdir: Path
    api_port: int = 0
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopped_workers: int = 0
    killed_workers: int = 0  # did not exit within STOP_GRACE_SECONDS of SIGTERM
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, command: str, label: str) -> subprocess.Popen[bytes]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("UPDATER_")}
        env |= {"REDIS_URL": self.redis_url, "UPDATER_STATE_DIR": str(self.workdir / "state"),
                "UPDATER_SETTLE_SECONDS": str(SETTLE_SECONDS), "UPDATER_HOST": "127.0.0.1",
                "UPDATER_PORT": str(self.api_port), "PYTHONUNBUFFERED": "1"}
        with (self.workdir / f"{label}.log").open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "worker.cli", command], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        self.api_port = testbed.free_port()
        self.api = self._spawn("api", "api")
        testbed.wait_for(lambda: self.http.get(f"{self.url}/health").status_code in (200, 503), timeout=60,
                         what="the API")

    def start_workers(self, count: int) -> None:
        self.workers += [self._spawn("worker", f"worker-{len(self.workers) + i}") for i in range(count)]
        testbed.wait_for(lambda: self.get("/health")["workers"] == count, timeout=60,
                         what=f"{count} live workers")

    def stop_workers(self) -> None:
        self.stopped_workers += len(self.workers)
        self.killed_workers += _terminate(self.workers)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None:
            _terminate([self.api])
        self.http.close()

    def get(self, path: str) -> Any:
        response = self.http.get(self.url + path)
        response.raise_for_status()
        return response.json()

    def api_rss_mib(self) -> float:
        """The API process's resident memory, from /proc."""
        assert self.api is not None
        for line in Path(f"/proc/{self.api.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the API process")

    def api_cpu_seconds(self) -> float:
        assert self.api is not None
        fields = Path(f"/proc/{self.api.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _terminate(processes: list[subprocess.Popen[bytes]]) -> int:
    """SIGTERM every process group, SIGKILL what is left after STOP_GRACE_SECONDS; returns how many were killed."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    killed = 0
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed += 1
    return killed
