"""Log relay latency: from the worker's JobLog.publish to receipt by WebSocket clients of /ws/logs."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.services import REPO, Updater
from worker.joblog import JobLog
from worker.progress import INFO

RELAY_CONTAINER = "hmmb-relay"
CONNECT_BATCH = 50
DRAIN_SECONDS = 10.0  # after the last publish, how long late lines may still arrive


@dataclass
class RelayResult:
    setup: str  # "as shipped" or with the Redis pool limit lifted through REDIS_URL
    clients: int  # connected
    served: int  # subscribed (got the replayed line) and still open when the round ended
    messages: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    api_rss_mib: float
    api_cpu_ms_per_message: float  # the API process's CPU for one line relayed to every client
    client_cpu_ms_per_message: float  # this process's, receiving that line on every client


def publish_lines(redis_url: str, job_id: str, count: int, interval: float) -> None:
    """Run in a child process, as the worker does: JobLog.publish, the send time (CLOCK_MONOTONIC) inside."""
    redis = Redis.from_url(redis_url)
    log = JobLog(redis, echo=False)
    next_at = time.monotonic()
    for seq in range(count):
        log.publish(job_id, RELAY_CONTAINER, INFO, f"{seq} {time.monotonic_ns()}")
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    redis.close()


@dataclass
class Listeners:
    """Every client's receive loop; latencies are kept per job id, so each round reads its own."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    ready: int = 0  # got their first line: the replayed history, so they are subscribed
    refused: int = 0  # closed by the API before their first line
    dropped: int = 0  # closed after it
    close_reasons: set[str] = field(default_factory=set)
    connections: list[ClientConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def add(self, url: str, count: int, deflate: bool) -> None:
        target = len(self.connections) + count
        compression = "deflate" if deflate else None
        for start in range(0, count, CONNECT_BATCH):
            batch = min(CONNECT_BATCH, count - start)
            opened = await asyncio.gather(*(connect(url, open_timeout=60, max_queue=None, compression=compression)
                                            for _ in range(batch)))
            self.connections += opened
            self.tasks += [asyncio.create_task(self._listen(ws)) for ws in opened]
        deadline = time.monotonic() + 60
        while self.ready + self.refused < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.ready} of {target} WebSocket clients got their first line")
            await asyncio.sleep(0.05)

    async def _listen(self, ws: ClientConnection) -> None:
        first = True
        try:
            async for raw in ws:
                received = time.monotonic_ns()
                if first:
                    self.ready += 1
                    first = False
                entry = json.loads(raw)
                bucket = self.latencies.get(entry["job_id"])
                if bucket is not None:
                    bucket.append((received - int(entry["message"].split()[1])) / 1e6)
        except ConnectionClosed:
            pass
        finally:
            if ws.close_code is not None and ws.close_code != 1000:
                self.close_reasons.add(f"{ws.close_code} {ws.close_reason}")
            if first:
                self.refused += 1
            else:
                self.dropped += 1

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.connections), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _round(updater: Updater, setup: str, listeners: Listeners, clients: int, messages: int,
                 interval: float, run_id: str) -> RelayResult:
    job_id = f"hmmb-{run_id}-relay-{len(listeners.latencies)}"
    bucket = listeners.latencies.setdefault(job_id, [])
    rss = updater.api_rss_mib()
    api_cpu, own_cpu = updater.api_cpu_seconds(), time.process_time()
    args = f"{updater.redis_url!r}, {job_id!r}, {messages}, {interval}"
    code = f"from bench.relay import publish_lines; publish_lines({args})"
    publisher = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=REPO)
    if await publisher.wait() != 0:
        raise RuntimeError(f"the publisher exited with {publisher.returncode}")
    deadline = time.monotonic() + DRAIN_SECONDS
    while len(bucket) < (listeners.ready - listeners.dropped) * messages and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    api_cpu, own_cpu = updater.api_cpu_seconds() - api_cpu, time.process_time() - own_cpu
    rss = max(rss, updater.api_rss_mib())
    if not bucket:
        raise RuntimeError(f"no client received a line in the {clients}-client round")
    return RelayResult(setup, clients, listeners.ready - listeners.dropped, messages, len(bucket),
                       percentile(bucket, 0.5), percentile(bucket, 0.99), max(bucket), rss,
                       api_cpu * 1000 / messages, own_cpu * 1000 / messages)


@dataclass
class RelayRun:
    setup: str
    idle_rss_mib: float
    results: list[RelayResult]
    close_reasons: list[str]


async def _relay_bench(updater: Updater, setup: str, client_counts: tuple[int, ...], messages: int,
                       interval: float, run_id: str, deflate: bool, progress: Callable[[str], None]) -> RelayRun:
    redis = Redis.from_url(updater.redis_url)
    JobLog(redis, echo=False).publish(f"hmmb-{run_id}-relay", RELAY_CONTAINER, INFO, "0 0")  # history to replay
    redis.close()
    idle_rss = updater.api_rss_mib()
    listeners = Listeners()
    url = f"ws://127.0.0.1:{updater.api_port}/ws/logs?limit=1"
    results = []
    try:
        for clients in client_counts:
            await listeners.add(url, clients - len(listeners.connections), deflate)
            result = await _round(updater, setup, listeners, clients, messages, interval, run_id)
            results.append(result)
            progress(f"relay ({setup}) {clients} clients, {result.served} served: p50 {result.p50_ms:.1f} ms, "
                     f"p99 {result.p99_ms:.1f} ms, {result.received}/{clients * messages} lines, "
                     f"API {result.api_rss_mib:.0f} MiB")
    finally:
        await listeners.close()
    return RelayRun(setup, idle_rss, results, sorted(listeners.close_reasons))


def relay_bench(updater: Updater, setup: str, client_counts: tuple[int, ...], messages: int, interval: float,
                run_id: str, progress: Callable[[str], None], *, deflate: bool = True) -> RelayRun:
    """Clients stay connected from one round to the next: 1, then 100, then 500. With deflate they offer
    permessage-deflate, as browsers do, and the API accepts it."""
    return asyncio.run(_relay_bench(updater, setup, client_counts, messages, interval, run_id, deflate, progress))
