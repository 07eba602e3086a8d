"""GET /jobs and GET /jobs/{id}: what the queue did, is doing and will do."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from rq.exceptions import NoSuchJobError
from rq.job import Job

from api.deps import QueueDep, RedisDep
from api.job_view import describe_job, recent_jobs
from api.schemas import JobList, JobPublic, error_responses

router = APIRouter()


@router.get("/jobs", response_model=JobList, responses=error_responses(422, 503))
def list_jobs(queue: QueueDep, limit: int = Query(default=50, ge=1, le=500)) -> JobList:
    return JobList(jobs=recent_jobs(queue, limit))


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=error_responses(404, 503))
def get_job(job_id: str, redis: RedisDep) -> JobPublic:
    try:
        job = Job.fetch(job_id, connection=redis)
    except (NoSuchJobError, ValueError):  # ValueError: not even a valid job id
        raise HTTPException(404, f"Job '{job_id}' not found") from None
    return describe_job(redis, job)
