"""GET /health: the seed's fields plus Redis, live workers and the engine; 503 when not healthy. Open to all:
it says whether things work, never what runs."""

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
from worker.redis_client import as_text

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
        engine = redis.get(keys.ENGINE_STATUS)
        redis_ok = True
    except RedisError:
        redis_ok, workers, started, engine = False, 0, 0, None
    docker = None if engine is None else as_text(engine) == "ok"
    healthy = redis_ok and workers > 0 and docker is not False
    body = Health(status="healthy" if healthy else "unhealthy", timestamp=datetime.now(UTC).isoformat(),
                  version=service_version(), update_in_progress=started > 0, redis=redis_ok, workers=workers,
                  docker=docker)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
