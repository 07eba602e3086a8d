"""Builds the FastAPI app and serves it: the API enqueues by dotted path and never imports `docker`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from api.broadcast import LogBroadcast
from api.errors import install_error_handlers
from api.metrics import Metrics
from api.routes import config, containers, health, images, jobs, logs, metrics, ui, update
from api.schemas import error_responses
from api.security import (
    RequestSizeLimit,
    hide_tokens_in_server_logs,
    require_token,
    require_websocket_access,
)
from worker.redis_client import async_redis_client, redis_client
from worker.settings import Settings, get_settings

API_SOCKET_TIMEOUT_SECONDS = 10.0
OPEN_ROUTERS = (health, config, ui)  # reveal nothing sensitive: the page must load before it has a token
TOKEN_ROUTERS = (update, jobs, containers, images, metrics)
log = logging.getLogger("hmm_updater.api")


def create_app(settings: Settings | None = None, redis: Redis | None = None,
               async_redis: AsyncRedis | None = None) -> FastAPI:
    settings = settings or get_settings()
    sync_redis = redis or redis_client(settings.redis_url, socket_timeout=API_SOCKET_TIMEOUT_SECONDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The asyncio client's connections belong to the running event loop, so make it here.
        own = async_redis is None
        hide_tokens_in_server_logs()
        if settings.updater_api_token is None:
            log.warning("UPDATER_API_TOKEN is not set: anyone who can reach this API can update the allowed "
                        "containers. Set it unless only trusted clients can connect.")
        app.state.async_redis = async_redis or async_redis_client(settings.redis_url)
        app.state.log_broadcast = LogBroadcast(app.state.async_redis)
        try:
            yield
        finally:
            await app.state.log_broadcast.aclose()
            if own:
                await app.state.async_redis.aclose()

    app = FastAPI(title="hmm-local-updater", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.redis = sync_redis
    app.state.metrics = Metrics(sync_redis)
    # Inside the metrics middleware: its task group would wrap the 413 raised while the body is read.
    app.add_middleware(RequestSizeLimit)
    app.middleware("http")(app.state.metrics.middleware)
    install_error_handlers(app)
    for module in TOKEN_ROUTERS:
        app.include_router(module.router, dependencies=[Depends(require_token)], responses=error_responses(401))
    app.include_router(logs.router, dependencies=[Depends(require_websocket_access)])
    for module in OPEN_ROUTERS:
        app.include_router(module.router)
    return app


def serve(settings: Settings) -> None:
    uvicorn.run(create_app(settings), host=settings.updater_host, port=settings.updater_port,
                log_level="info", ws="websockets-sansio")
