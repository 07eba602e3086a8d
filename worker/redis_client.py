"""Redis clients with timeouts, so a dead Redis fails a request quickly instead of hanging it."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 30.0  # above the longest blocking read we issue (BLPOP of the inventory refresh)


def redis_client(url: str, socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=socket_timeout)


def async_redis_client(url: str) -> AsyncRedis:
    return AsyncRedis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
