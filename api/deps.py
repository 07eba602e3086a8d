"""Dependencies the routes declare: settings, the Redis client, the RQ queue, and access checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from redis import Redis
from rq import Queue
from starlette.requests import HTTPConnection

from worker import keys
from worker.settings import Settings


# HTTPConnection, not Request: the WebSocket route needs them too.
def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def get_redis(connection: HTTPConnection) -> Redis:
    redis: Redis = connection.app.state.redis
    return redis


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]


def get_queue(redis: RedisDep) -> Queue:
    return Queue(keys.QUEUE_NAME, connection=redis)


QueueDep = Annotated[Queue, Depends(get_queue)]
