"""GET /images/latest: the newest `main-<sha>` image for a container, resolved without updating anything."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import updates
from api.deps import RedisDep, SettingsDep
from api.schemas import CONTAINER_NAME_SCHEMA, error_responses
from worker.errors import InvalidRequest, ServiceUnavailable, UpdaterError
from worker.policy import check_container
from worker.reference import parse_image_reference, validate_container_name
from worker.settings import Settings

router = APIRouter()

# Resolving asks GitHub (60 unauthenticated requests an hour) and the registry, and the page asks for
# every container it shows, so answers are kept a while per image.
RESOLVED_TTL_SECONDS = 300.0
FAILED_TTL_SECONDS = 60.0


class LatestImage(BaseModel):
    container_name: str
    current_image: str
    latest_image: str | None
    update_available: bool
    checked_at: str
    detail: str | None  # why latest_image is unknown: not a main-<sha> image, or resolution failed


class _ResolvedCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, str | None, str | None, str]] = {}

    def get(self, image: str) -> tuple[str | None, str | None, str] | None:
        with self._lock:
            entry = self._entries.get(image)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2], entry[3]

    def put(self, image: str, latest: str | None, detail: str | None, checked_at: str) -> None:
        ttl = RESOLVED_TTL_SECONDS if latest else FAILED_TTL_SECONDS
        with self._lock:
            self._entries[image] = (time.monotonic() + ttl, latest, detail, checked_at)


resolved = _ResolvedCache()


@router.get("/images/latest", response_model=LatestImage, responses=error_responses(400, 403, 404, 422, 503))
def latest_image(settings: SettingsDep, redis: RedisDep,
                 container: str = Query(description="container name", json_schema_extra=CONTAINER_NAME_SCHEMA),
                 refresh: bool = Query(default=False, description="resolve again, ignoring the cache")
                 ) -> LatestImage:
    name = validate_container_name(container)
    info = updates.find_container(redis, name)
    if info is None:
        raise ServiceUnavailable("No worker has published the container list recently: is a worker running?")
    check_container(name, info.get("labels"), settings)
    current = info["image"]
    cached = None if refresh else resolved.get(current)
    if cached is None:
        latest, detail = _resolve(settings, current)
        cached = (latest, detail, datetime.now(UTC).isoformat(timespec="seconds"))
        resolved.put(current, *cached)
    latest, detail, checked_at = cached
    return LatestImage(container_name=name, current_image=current, latest_image=latest,
                       update_available=latest is not None and latest != current, checked_at=checked_at,
                       detail=detail)


def _resolve(settings: Settings, current: str) -> tuple[str | None, str | None]:
    prefix = settings.updater_tag_prefix
    try:
        tag = parse_image_reference(current).tag
    except InvalidRequest:
        tag = None
    if not tag or not tag.startswith(prefix):
        return None, f"{current} is not a {prefix}<sha> image"
    try:
        return updates.resolve_newest(settings, current), None
    except UpdaterError as exc:
        return None, str(exc)
