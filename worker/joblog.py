"""The job log in Redis: every progress line goes to a per-job list, a global list and the log channel."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypedDict

from redis import Redis

from worker import keys
from worker.progress import ProgressSink, format_line

DEFAULT_HISTORY_LIMIT = 200


class LogEntry(TypedDict):
    id: str  # lets a WebSocket client drop a line it got both from the history and live
    timestamp: str  # HH:MM:SS, local time, as the seed's log viewer shows it
    time: str  # ISO-8601 UTC
    level: str
    message: str
    job_id: str
    container_name: str


def make_entry(job_id: str, container_name: str, level: str, message: str,
               when: datetime | None = None) -> LogEntry:
    when = when or datetime.now(UTC)
    return LogEntry(
        id=secrets.token_hex(8),
        timestamp=when.astimezone().strftime("%H:%M:%S"),
        time=when.astimezone(UTC).isoformat(timespec="milliseconds"),
        level=level,
        message=message,
        job_id=job_id,
        container_name=container_name,
    )


def history_key(job_id: str | None) -> str:
    return keys.job_log(job_id) if job_id else keys.LOG_HISTORY


def decode_entries(raw: Sequence[bytes | str]) -> list[LogEntry]:
    entries: list[LogEntry] = [json.loads(item) for item in raw]
    return entries


class JobLog:
    def __init__(self, redis: Redis, echo: bool = True) -> None:
        self.redis = redis
        self.echo = echo

    def publish(self, job_id: str, container_name: str, level: str, message: str) -> LogEntry:
        entry = make_entry(job_id, container_name, level, message)
        payload = json.dumps(entry)
        job_key = keys.job_log(job_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(job_key, payload)
            pipe.ltrim(job_key, -keys.JOB_LOG_MAX, -1)
            pipe.expire(job_key, keys.JOB_LOG_TTL_SECONDS)
            pipe.rpush(keys.LOG_HISTORY, payload)
            pipe.ltrim(keys.LOG_HISTORY, -keys.LOG_HISTORY_MAX, -1)
            pipe.publish(keys.LOG_CHANNEL, payload)
            pipe.execute()
        if self.echo:
            print(format_line(level, f"[{container_name}] {message}"), flush=True)
        return entry

    def history(self, job_id: str | None = None, limit: int = DEFAULT_HISTORY_LIMIT) -> list[LogEntry]:
        """The newest `limit` entries, oldest first; one job's when `job_id` is given."""
        return decode_entries(self.redis.lrange(history_key(job_id), -limit, -1))

    def sink_for(self, job_id: str, container_name: str) -> ProgressSink:
        def sink(level: str, message: str) -> None:
            self.publish(job_id, container_name, level, message)

        return sink
