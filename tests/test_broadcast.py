"""The API's single log subscription, fanned out to every WebSocket client (fakeredis and real Redis)."""

from __future__ import annotations

import asyncio
import json

import pytest
from fakeredis import FakeAsyncRedis
from redis.asyncio import Redis as AsyncRedis

from api import broadcast as module
from api.broadcast import Closed, Line, LogBroadcast
from worker import keys


def line(n: int, job_id: str = "job") -> str:
    return json.dumps({"id": f"l{n}", "job_id": job_id, "message": f"line {n}"})


async def fan_out_to_two_clients(redis: AsyncRedis) -> None:
    broadcast = LogBroadcast(redis)
    try:
        async with broadcast.listen() as first, broadcast.listen() as second:
            await redis.publish(keys.LOG_CHANNEL, line(1))
            got = [await asyncio.wait_for(q.get(), 5) for q in (first, second)]
            assert got == [Line("l1", "job", line(1))] * 2
            assert len(broadcast.clients) == 2
        assert broadcast.clients == set()
        numsub = dict(await redis.pubsub_numsub(keys.LOG_CHANNEL))
        assert numsub[keys.LOG_CHANNEL.encode()] == 1, "one subscription whatever the number of clients"
    finally:
        await broadcast.aclose()


def test_fan_out_with_fakeredis() -> None:
    asyncio.run(fan_out_to_two_clients(FakeAsyncRedis()))


def test_fan_out_with_real_redis(redis_url: str) -> None:
    async def run() -> None:
        redis = AsyncRedis.from_url(redis_url)
        try:
            await fan_out_to_two_clients(redis)
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_client_too_far_behind_is_closed_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "CLIENT_QUEUE_MAX", 3)

    async def run() -> None:
        redis = FakeAsyncRedis()
        broadcast = LogBroadcast(redis)
        try:
            async with broadcast.listen() as slow:
                for n in range(5):
                    await redis.publish(keys.LOG_CHANNEL, line(n))
                for _ in range(50):
                    if slow not in broadcast.clients:
                        break
                    await asyncio.sleep(0.02)
                items = [slow.get_nowait() for _ in range(slow.qsize())]
                assert isinstance(items[-1], Closed) and "behind" in items[-1].reason
        finally:
            await broadcast.aclose()

    asyncio.run(run())
