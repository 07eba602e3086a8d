"""Redis clients with timeouts, so a dead Redis fails a request quickly instead of hanging it."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 30.0  # above the longest blocking read we issue (BLPOP of the inventory refresh)


def redis_client(url: str, socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=socket_timeout)


ASYNC_POOL_SIZE = 50
ASYNC_POOL_WAIT_SECONDS = 10.0


def async_redis_client(url: str) -> AsyncRedis:
    """A blocking pool: a burst of WebSocket clients reading history waits for a connection, never fails."""
    pool = BlockingConnectionPool.from_url(url, max_connections=ASYNC_POOL_SIZE, timeout=ASYNC_POOL_WAIT_SECONDS,
                                           socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    return AsyncRedis.from_pool(pool)  # the client owns the pool and closes it


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
