"""The container inventory the worker publishes into Redis so the API needs no Docker socket."""

from __future__ import annotations

import json
import time
from typing import Any, TypedDict

from redis import Redis

from worker import keys


class ContainerInfo(TypedDict):
    name: str
    id: str
    image: str
    image_id: str
    state: str
    health: str | None
    created: str
    started_at: str | None
    labels: dict[str, str]


def summarize(inspect: dict[str, Any]) -> ContainerInfo:
    state = inspect.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return ContainerInfo(
        name=inspect["Name"].lstrip("/"),
        id=inspect["Id"],
        image=inspect["Config"]["Image"],
        image_id=inspect["Image"],
        state=state.get("Status", "unknown"),
        health=health,
        created=inspect["Created"],
        started_at=state.get("StartedAt") if state.get("Running") else None,
        labels=inspect["Config"].get("Labels") or {},
    )


def publish_inventory(redis: Redis, containers: list[ContainerInfo]) -> None:
    payload = json.dumps({"published_at": time.time(), "containers": containers})
    redis.set(keys.CONTAINERS, payload, ex=keys.CONTAINERS_TTL_SECONDS)


def read_inventory(redis: Redis) -> list[ContainerInfo] | None:
    """The last published inventory, or None when no worker published one recently."""
    raw = redis.get(keys.CONTAINERS)
    if raw is None:
        return None
    containers: list[ContainerInfo] = json.loads(raw)["containers"]
    return containers
