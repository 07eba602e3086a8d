"""The per-container update lock: a Redis key holding the id of the job allowed to update the container.

The API takes it atomically with the enqueue (see api/updates.py); the job confirms it when it starts and
releases it when it ends, each only while it still holds it, so it holds across worker processes.
"""

from __future__ import annotations

from redis import Redis

from worker import keys

# Renew our own lock, or take a free one; answer the holder either way.
_CONFIRM = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    return ARGV[1]
end
return holder
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_holder(redis: Redis, name: str) -> str | None:
    holder = redis.get(keys.container_lock(name))
    return holder.decode() if isinstance(holder, bytes) else holder


def confirm_lock(redis: Redis, name: str, job_id: str, ttl: int) -> str:
    """Extend the lock when `job_id` holds it or nobody does; returns the holder (job_id on success)."""
    holder = redis.eval(_CONFIRM, 1, keys.container_lock(name), job_id, ttl)
    return holder.decode() if isinstance(holder, bytes) else str(holder)


def release_lock(redis: Redis, name: str, job_id: str) -> bool:
    """Delete the lock only while `job_id` still holds it."""
    return bool(redis.eval(_RELEASE, 1, keys.container_lock(name), job_id))
