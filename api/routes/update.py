"""POST /update: queue an update of one container, or wait for its outcome with ?wait=true."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from rq.job import JobStatus

from api import updates
from api.deps import QueueDep, RedisDep, SettingsDep
from api.errors import error_response, status_for
from api.job_view import job_error, job_result
from api.schemas import UpdateAccepted, UpdateRequest, UpdateSucceeded, error_responses
from api.security import require_json_body

router = APIRouter()
# With ?wait=true a failed job answers the status of its error: 403, 404, 409, 422, 500, 502, 503.
ERRORS = error_responses(400, 403, 404, 409, 413, 415, 422, 500, 502, 503)


@router.post("/update", status_code=202, response_model=UpdateAccepted,
             responses={200: {"model": UpdateSucceeded}, **ERRORS}, dependencies=[Depends(require_json_body)])
def update_container(body: UpdateRequest, settings: SettingsDep, redis: RedisDep, queue: QueueDep,
                     wait: bool = False,
                     timeout: float = Query(default=600.0, gt=0, le=7200)) -> JSONResponse:
    plan = updates.plan_update(body, settings, redis)
    job = updates.enqueue_update(redis, queue, plan, settings)
    accepted = UpdateAccepted(job_id=job.id, container_name=plan.container_name, new_image=plan.new_image,
                              status=JobStatus.QUEUED.value, message=f"{plan.description} queued")
    if not wait:
        return JSONResponse(accepted.model_dump(), status_code=202)
    status = updates.wait_until_done(job, timeout)
    if status == JobStatus.FINISHED:
        result = job_result(job) or {}
        return JSONResponse(UpdateSucceeded(
            message=result.get("message", "Update finished"), container_id=result.get("container_id", ""),
            timestamp=datetime.now(UTC).isoformat(timespec="seconds"), job_id=job.id,
            updated=bool(result.get("updated")),
        ).model_dump())
    if status in updates.DONE:
        return error_response(status_for(job.meta.get("error_type")), job_error(job) or status.value,
                              job_id=job.id)
    accepted.status = status.value
    accepted.message = f"Still {status.value} after {timeout:g} s; follow GET /jobs/{job.id}"
    return JSONResponse(accepted.model_dump(), status_code=202)
