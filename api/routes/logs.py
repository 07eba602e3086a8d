"""WS /ws/logs: replay the recent log, then relay the log channel until the client goes away."""

from __future__ import annotations

import asyncio
import contextlib

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.broadcast import Closed, Line, LogBroadcast
from api.security import accepted_subprotocol
from worker.joblog import DEFAULT_HISTORY_LIMIT, decode_entries, history_key

router = APIRouter()
RELAY_ERRORS = (WebSocketDisconnect, RedisError, OSError, RuntimeError)


@router.websocket("/ws/logs")
async def stream_logs(websocket: WebSocket, job_id: str | None = None,
                      limit: int = DEFAULT_HISTORY_LIMIT) -> None:
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    redis: AsyncRedis = websocket.app.state.async_redis
    broadcast: LogBroadcast = websocket.app.state.log_broadcast
    try:
        # Listen before reading the history so no line falls between the two.
        async with broadcast.listen() as queue:
            replayed = set()
            for entry in decode_entries(await redis.lrange(history_key(job_id), -max(1, limit), -1)):
                replayed.add(entry["id"])
                await websocket.send_json(entry)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_watch_disconnect, websocket, tasks.cancel_scope)
                tasks.start_soon(_relay, websocket, queue, job_id, replayed, tasks.cancel_scope)
    except RedisError as exc:
        await _close(websocket, f"Redis is not reachable: {exc}")
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass


async def _close(websocket: WebSocket, reason: str) -> None:
    with contextlib.suppress(*RELAY_ERRORS):
        await websocket.close(code=1011, reason=reason[:120])


async def _watch_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except RELAY_ERRORS:
        pass
    finally:
        scope.cancel()


async def _relay(websocket: WebSocket, queue: asyncio.Queue[Line | Closed], job_id: str | None,
                 replayed: set[str], scope: anyio.CancelScope) -> None:
    try:
        while True:
            item = await queue.get()
            if isinstance(item, Closed):
                await _close(websocket, item.reason)
                return
            if (job_id and item.job_id != job_id) or item.id in replayed:
                continue
            await websocket.send_text(item.raw)
    except RELAY_ERRORS:
        pass
    finally:
        scope.cancel()
