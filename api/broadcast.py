"""One subscription to the log channel per API process, fanned out to every WebSocket client's queue.

Each client used to hold its own Redis pub/sub connection and re-encode every line; with hundreds of
clients that exhausted the connection pool and the CPU (bench/results.md). Here a line is decoded once
and its raw text queued for each client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from worker import keys

log = logging.getLogger("hmm_updater.api")
CLIENT_QUEUE_MAX = 1000  # a client this far behind is dropped rather than buffered without end


@dataclass(frozen=True)
class Line:
    id: str
    job_id: str | None
    raw: str


@dataclass(frozen=True)
class Closed:
    """Sent to every client when the subscription fails; the client reconnects and replays history."""

    reason: str


class LogBroadcast:
    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis
        self.clients: set[asyncio.Queue[Line | Closed]] = set()
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Line | Closed]]:
        """A queue of every line published from now on; raises RedisError when Redis is unreachable."""
        queue: asyncio.Queue[Line | Closed] = asyncio.Queue(CLIENT_QUEUE_MAX)
        self.clients.add(queue)
        try:
            if self.task is None or self.task.done():
                self.ready.clear()
                self.task = asyncio.create_task(self._run())
            ready = asyncio.create_task(self.ready.wait())
            done, _ = await asyncio.wait({ready, self.task}, return_when=asyncio.FIRST_COMPLETED)
            if ready not in done:
                ready.cancel()
                raise RedisError("the log subscription failed")
            yield queue
        finally:
            self.clients.discard(queue)

    async def _run(self) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(keys.LOG_CHANNEL)
            self.ready.set()
            async for message in pubsub.listen():
                if message["type"] == "message":
                    self._fan_out(message["data"])
        except (RedisError, OSError) as exc:
            log.warning("log relay lost Redis: %s", exc)
            self._close_all(f"Redis is not reachable: {exc}")
        finally:
            self.ready.clear()
            # Closing drops the connection, and the subscription with it: no UNSUBSCRIBE round trip that a
            # cancelled read could leave waiting.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _fan_out(self, data: bytes | str) -> None:
        raw = data.decode() if isinstance(data, bytes) else data
        try:
            entry = json.loads(raw)
            line = Line(str(entry.get("id", "")), entry.get("job_id"), raw)
        except (ValueError, AttributeError):
            return
        for queue in list(self.clients):
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                self.clients.discard(queue)
                self._force(queue, Closed("the client fell too far behind the log"))

    def _close_all(self, reason: str) -> None:
        for queue in list(self.clients):
            self._force(queue, Closed(reason))

    @staticmethod
    def _force(queue: asyncio.Queue[Line | Closed], item: Closed) -> None:
        while True:
            try:
                queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                queue.get_nowait()

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            # A pub/sub read can swallow one cancellation (seen with fakeredis); never hang shutdown on it.
            await asyncio.wait({self.task}, timeout=2)
