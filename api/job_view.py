"""What the API shows of an RQ job: its status, container, images, step, timestamps, outcome and log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from api.schemas import JobPublic, JobSummary, LogEntryPublic
from worker import keys
from worker.joblog import JobLog


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="milliseconds") if when else None


def job_error(job: Job) -> str | None:
    if job.get_status(refresh=False) != JobStatus.FAILED:
        return None
    error = job.meta.get("error")
    if error:
        return str(error)
    latest = job.latest_result()
    lines = (latest.exc_string or "").strip().splitlines() if latest else []
    return lines[-1] if lines else "failed"


def job_result(job: Job) -> dict[str, Any] | None:
    if job.get_status(refresh=False) != JobStatus.FINISHED:
        return None
    value = job.return_value()
    return value if isinstance(value, dict) else None


def summarize_job(job: Job) -> JobSummary:
    meta = job.meta
    result = job_result(job)
    return JobSummary(
        id=job.id,
        status=job.get_status(refresh=False).value,
        description=job.description,
        container_name=meta.get("container_name"),
        old_image=(result or {}).get("old_image") or meta.get("old_image"),
        new_image=(result or {}).get("new_image") or meta.get("new_image"),
        step=meta.get("step"),
        enqueued_at=_iso(job.enqueued_at),
        started_at=_iso(job.started_at),
        ended_at=_iso(job.ended_at),
        container_id=(result or {}).get("container_id"),
        error=job_error(job),
    )


def describe_job(redis: Redis, job: Job) -> JobPublic:
    log = [LogEntryPublic(**entry) for entry in JobLog(redis).history(job.id, limit=keys.JOB_LOG_MAX)]
    return JobPublic(**summarize_job(job).model_dump(), result=job_result(job), log=log)


def recent_jobs(queue: Queue, limit: int) -> list[JobSummary]:
    ids: set[str] = set(queue.get_job_ids())
    for registry in (queue.started_job_registry, queue.finished_job_registry, queue.failed_job_registry,
                     queue.canceled_job_registry):
        ids.update(registry.get_job_ids(cleanup=False))
    jobs = [job for job in Job.fetch_many(list(ids), connection=queue.connection) if job is not None]
    jobs.sort(key=lambda j: j.enqueued_at or j.created_at, reverse=True)
    return [summarize_job(job) for job in jobs[:limit]]
