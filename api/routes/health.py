"""GET /health: the seed's fields plus Redis reachability and live workers; 503 when not healthy."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from rq import Queue

from api.deps import RedisDep
from api.schemas import ErrorBody, Health
from worker import keys
from worker.reaper import live_workers

router = APIRouter()


def service_version() -> str:
    try:
        return version("hmm-local-updater")
    except PackageNotFoundError:
        return "0.0.0+unknown"


@router.get("/health", response_model=Health, responses={503: {"model": Health}, 500: {"model": ErrorBody}})
def health(redis: RedisDep) -> JSONResponse:
    try:
        redis.ping()
        workers = len(live_workers(redis))
        started = Queue(keys.QUEUE_NAME, connection=redis).started_job_registry.get_job_count(cleanup=False)
        redis_ok = True
    except RedisError:
        redis_ok, workers, started = False, 0, 0
    healthy = redis_ok and workers > 0
    body = Health(status="healthy" if healthy else "unhealthy", timestamp=datetime.now(UTC).isoformat(),
                  version=service_version(), update_in_progress=started > 0, redis=redis_ok, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
