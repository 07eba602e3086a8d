"""Dependencies the routes declare: settings, the Redis client, the RQ queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from rq import Queue

from worker import keys
from worker.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]


def get_queue(redis: RedisDep) -> Queue:
    return Queue(keys.QUEUE_NAME, connection=redis)


QueueDep = Annotated[Queue, Depends(get_queue)]
