"""Who may call the API: the bearer token, the WebSocket's Origin, and what a request body may be."""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SettingsDep
from worker.settings import Settings

TOKEN_QUERY_PARAM = "token"
TOKEN_SUBPROTOCOL_PREFIX = "bearer."  # Sec-WebSocket-Protocol: bearer.<token> (browsers cannot set headers)
BEARER_SUBPROTOCOL = "bearer"
MAX_BODY_BYTES = 64 * 1024  # a request body is a few hundred bytes; anything larger is refused with 413
CLOSE_CODES = {401: 4401, 403: 1008, 415: 1008}  # for servers without the WebSocket denial-response extension
_TOKEN_IN_QUERY = re.compile(rf"([?&]{TOKEN_QUERY_PARAM}=)[^&\s\"]*")

bearer = HTTPBearer(auto_error=False, description="The value of UPDATER_API_TOKEN; needed only when it is set.")


class RequestRefused(Exception):
    """401 (no or a wrong token), 403 (a foreign Origin) or 415 (not JSON), for HTTP and WebSocket alike."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def token_accepted(settings: Settings, given: str | None) -> bool:
    expected = settings.updater_api_token
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def require_token(settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    if not token_accepted(settings, credentials.credentials if credentials else None):
        raise RequestRefused(401, "Missing or wrong API token: send the header Authorization: Bearer <token>")


def websocket_token(websocket: WebSocket) -> str | None:
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return str(protocol.removeprefix(TOKEN_SUBPROTOCOL_PREFIX))
    return websocket.query_params.get(TOKEN_QUERY_PARAM)


def accepted_subprotocol(websocket: WebSocket) -> str | None:
    """The subprotocol to answer: a browser that offered some fails the handshake unless one is chosen."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    if BEARER_SUBPROTOCOL in offered:
        return BEARER_SUBPROTOCOL
    return next((p for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)), None)


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """A browser's Origin must be the page's own (same host and port; the scheme may differ behind a TLS
    proxy) or one of `allowed`; clients that send no Origin are not browsers and are not at risk."""
    if origin is None:
        return True
    parts = urlsplit(origin.lower())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if host is not None and _with_default_port(parts.netloc, parts.scheme) == _with_default_port(host.lower(),
                                                                                                 parts.scheme):
        return True
    return f"{parts.scheme}://{parts.netloc}" in {a.lower().rstrip("/") for a in allowed}


def _with_default_port(netloc: str, scheme: str) -> str:
    if netloc.endswith("]") or ":" not in netloc:  # no port (an IPv6 host ends with ']')
        return f"{netloc}:{443 if scheme == 'https' else 80}"
    return netloc


def require_websocket_access(websocket: WebSocket, settings: SettingsDep) -> None:
    if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"),
                          settings.updater_allowed_origins):
        raise RequestRefused(403, "Origin not allowed: open the page from the updater itself or add its origin to "
                                "UPDATER_ALLOWED_ORIGINS")
    if not token_accepted(settings, websocket_token(websocket)):
        raise RequestRefused(401, "Missing or wrong API token: pass ?token=<token> or the subprotocol bearer.<token>")


async def request_refused(connection: HTTPConnection, exc: Exception) -> Response | None:
    assert isinstance(exc, RequestRefused)
    body = JSONResponse({"success": False, "error": exc.error}, status_code=exc.status,
                        headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
    if not isinstance(connection, WebSocket):
        return body
    websocket = connection
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(body)  # the handshake is refused with this status and body
    else:
        await websocket.close(code=CLOSE_CODES[exc.status], reason=exc.error[:120])
    return None


def require_json_body(request: Request) -> None:
    """415 unless the body is JSON: cross-site pages can send text/plain or form bodies without a CORS
    preflight, JSON they cannot."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise RequestRefused(415, "Send the request body as JSON, with Content-Type: application/json")


class RequestSizeLimit:
    """Request bodies of more than `max_bytes` are refused with 413 before anything reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"Request body larger than {self.max_bytes} bytes"
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"success": False, "error": too_large}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # no Content-Length, or a false one: stop reading here
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)


class HideTokens(logging.Filter):
    """uvicorn logs each WebSocket's path with its query string: mask `token=` there."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if f"{TOKEN_QUERY_PARAM}=" in message:
            record.msg, record.args = _TOKEN_IN_QUERY.sub(r"\1***", message), None
        return True


hide_tokens = HideTokens()


def hide_tokens_in_server_logs() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(hide_tokens)
