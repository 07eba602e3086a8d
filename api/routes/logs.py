"""WS /ws/logs: replay the recent log, then relay the log channel until the client goes away."""

from __future__ import annotations

import contextlib
import json

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from api.security import accepted_subprotocol
from worker import keys
from worker.joblog import DEFAULT_HISTORY_LIMIT, decode_entries, history_key

router = APIRouter()
RELAY_ERRORS = (WebSocketDisconnect, RedisError, OSError, RuntimeError)


@router.websocket("/ws/logs")
async def stream_logs(websocket: WebSocket, job_id: str | None = None,
                      limit: int = DEFAULT_HISTORY_LIMIT) -> None:
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    redis: AsyncRedis = websocket.app.state.async_redis
    pubsub = redis.pubsub()
    try:
        # Subscribe before reading the history so no line falls between the two.
        await pubsub.subscribe(keys.LOG_CHANNEL)
        replayed = set()
        for entry in decode_entries(await redis.lrange(history_key(job_id), -max(1, limit), -1)):
            replayed.add(entry["id"])
            await websocket.send_json(entry)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_watch_disconnect, websocket, tasks.cancel_scope)
            tasks.start_soon(_relay, websocket, pubsub, job_id, replayed, tasks.cancel_scope)
    except RedisError as exc:
        with contextlib.suppress(*RELAY_ERRORS):
            await websocket.close(code=1011, reason=f"Redis is not reachable: {exc}"[:120])
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe()
            await pubsub.aclose()


async def _watch_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except RELAY_ERRORS:
        pass
    finally:
        scope.cancel()


async def _relay(websocket: WebSocket, pubsub: PubSub, job_id: str | None, replayed: set[str],
                 scope: anyio.CancelScope) -> None:
    try:
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            entry = json.loads(message["data"])
            if (job_id and entry.get("job_id") != job_id) or entry.get("id") in replayed:
                continue
            await websocket.send_json(entry)
    except RedisError as exc:
        with contextlib.suppress(*RELAY_ERRORS):
            await websocket.close(code=1011, reason=f"Redis is not reachable: {exc}"[:120])
    except RELAY_ERRORS:
        pass
    finally:
        scope.cancel()
