"""Every error answers `{success: false, error: "..."}` with a status that fits its cause."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from api.security import RequestRefused, request_refused
from worker.errors import UpdateInProgress, UpdaterError

STATUS_BY_ERROR = {
    "InvalidRequest": 400,
    "NotAllowed": 403,
    "UpdateRefused": 403,
    "ContainerNotFound": 404,
    "UpdateInProgress": 409,
    "ImageResolutionFailed": 422,
    "ImagePullFailed": 502,
    "EngineError": 502,
    "ServiceUnavailable": 503,
}


def status_for(error_type: str | None) -> int:
    return STATUS_BY_ERROR.get(error_type or "", 500)


def error_response(status: int, error: str, *, headers: Mapping[str, str] | None = None, **extra: Any
                   ) -> JSONResponse:
    return JSONResponse({"success": False, "error": error, **extra}, status_code=status, headers=headers)


async def updater_error(request: Request, exc: Exception) -> JSONResponse:
    extra: dict[str, Any] = {"job_id": exc.job_id} if isinstance(exc, UpdateInProgress) else {}
    return error_response(status_for(type(exc).__name__), str(exc), **extra)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
    return error_response(status, "Invalid request: " + "; ".join(problems))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def redis_down(request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, f"Redis is not reachable: {exc}")


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The details stay in the server's log: an exception's text may carry what the caller must not see.
    return error_response(500, "Internal error; see the API's log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(RequestRefused, request_refused)  # type: ignore[arg-type]  # HTTP and WebSocket
    app.add_exception_handler(UpdaterError, updater_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RedisConnectionError, redis_down)
    app.add_exception_handler(RedisTimeoutError, redis_down)
