"""The RQ job that updates one container (enqueued by the API as keys.UPDATE_JOB_FUNC)."""

from __future__ import annotations

import time
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from worker import keys, update
from worker.errors import UpdateInProgress
from worker.joblog import JobLog
from worker.locks import confirm_lock, release_lock
from worker.progress import ERROR, INFO, ProgressSink, format_line
from worker.settings import get_settings
from worker.update_metrics import record_update


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _save_meta(job: Job, **fields: Any) -> None:
    job.meta.update(fields)
    # A Redis restarted without persistence lost the job: writing meta alone would leave a broken record.
    if job.connection.exists(job.key):
        job.save_meta()  # type: ignore[no-untyped-call]


def _fail_safe(container_name: str, log: ProgressSink) -> ProgressSink:
    """Redis going away must not break the update it reports on: the line then goes to the worker's log only."""

    def sink(level: str, message: str) -> None:
        try:
            log(level, message)
        except RedisError as exc:
            print(format_line(level, f"[{container_name}] {message} (not published: {exc})"), flush=True)

    return sink


def _tracking_sink(job: Job, log: ProgressSink) -> ProgressSink:
    """Publish each step and keep job.meta['step'] current, so rq-dashboard and GET /jobs show it."""

    def sink(level: str, message: str) -> None:
        log(level, message)
        with suppress(RedisError):
            _save_meta(job, step=message)

    return sink


def run_update(container_name: str, new_image: str | None = None, force: bool = False) -> dict[str, Any]:
    job = get_current_job()
    if job is None:
        raise RuntimeError("run_update must run inside an RQ job")
    settings = get_settings()
    redis = job.connection
    log = _fail_safe(container_name, JobLog(redis).sink_for(job.id, container_name))
    started = time.monotonic()
    job.meta.setdefault("old_image", None)
    _save_meta(job, container_name=container_name, new_image=new_image or job.meta.get("new_image"),
               step="started", started_at=_now())
    try:
        holder = confirm_lock(redis, container_name, job.id,
                              settings.updater_job_timeout + keys.LOCK_TTL_MARGIN_SECONDS)
        if holder != job.id:
            raise UpdateInProgress(container_name, holder)
        log(INFO, f"🚀 Job {job.id} started: update {container_name} → {new_image or 'newest image'}")
        result = update.perform_update(container_name, new_image, settings,
                                       _tracking_sink(job, log), force=force,
                                       enforce_policy=True)
    except Exception as exc:
        with suppress(RedisError):
            _save_meta(job, step="failed", finished_at=_now(), error=str(exc), error_type=type(exc).__name__)
        log(ERROR, f"❌ Update of {container_name} failed: {exc}")
        with suppress(RedisError):
            record_update(redis, "failed", time.monotonic() - started)
        raise
    finally:
        with suppress(RedisError):  # a lock left behind expires, and its finished job no longer blocks
            release_lock(redis, container_name, job.id)
    with suppress(RedisError):
        _save_meta(job, step="finished", finished_at=_now(), old_image=result.old_image,
                   new_image=result.new_image)
    log(INFO, f"✅ {result.message}")
    with suppress(RedisError):
        record_update(redis, "updated" if result.updated else "unchanged", time.monotonic() - started)
    return {
        "container_id": result.container_id,
        "container_name": result.container_name,
        "old_image": result.old_image,
        "new_image": result.new_image,
        "updated": result.updated,
        "message": result.message,
    }
