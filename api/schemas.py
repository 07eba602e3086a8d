"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from worker.reference import CONTAINER_NAME_MAX, DEFAULT_DOMAIN, NAME_TOTAL_LENGTH_MAX, OFFICIAL_REPO_PREFIX, REFERENCE

# Documented for clients (and schemathesis), checked by worker.reference with clearer messages than a 422;
# the reference pattern is docker's grammar, a little looser than docker's parser.
CONTAINER_NAME_SCHEMA: JsonDict = {"pattern": rf"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{{1,{CONTAINER_NAME_MAX - 1}}}$"}
# The name's limit counts the normalised name (`ubuntu` is `docker.io/library/ubuntu`): documented short
# enough that any reference within it is accepted.
IMAGE_REFERENCE_SCHEMA: JsonDict = {
    "pattern": f"^{REFERENCE}$",
    "maxLength": NAME_TOTAL_LENGTH_MAX - len(f"{DEFAULT_DOMAIN}/{OFFICIAL_REPO_PREFIX}"),
}


class UpdateRequest(BaseModel):
    """The seed's body; an omitted container_name means TARGET_CONTAINER, an omitted new_image the newest."""

    model_config = ConfigDict(extra="forbid")

    container_name: str | None = Field(default=None, json_schema_extra=CONTAINER_NAME_SCHEMA)
    new_image: str | None = Field(default=None, json_schema_extra=IMAGE_REFERENCE_SCHEMA)
    force: bool = False


class UpdateAccepted(BaseModel):
    success: Literal[True] = True
    job_id: str
    container_name: str
    new_image: str | None
    status: str
    message: str


class UpdateSucceeded(BaseModel):
    """The seed's synchronous answer, for `?wait=true`."""

    success: Literal[True] = True
    message: str
    container_id: str
    timestamp: str
    job_id: str
    updated: bool


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, all answered as ErrorBody."""
    return {status: {"model": ErrorBody} for status in statuses}


class LogEntryPublic(BaseModel):
    id: str
    timestamp: str
    time: str
    level: str
    message: str
    job_id: str
    container_name: str


class JobSummary(BaseModel):
    id: str
    status: str
    description: str | None
    container_name: str | None
    old_image: str | None
    new_image: str | None
    step: str | None
    enqueued_at: str | None
    started_at: str | None
    ended_at: str | None
    container_id: str | None
    error: str | None


class JobPublic(JobSummary):
    result: dict[str, Any] | None
    log: list[LogEntryPublic]


class JobList(BaseModel):
    jobs: list[JobSummary]


class ContainerPublic(BaseModel):
    name: str
    id: str
    image: str
    state: str
    health: str | None
    created: str
    started_at: str | None


class ContainerList(BaseModel):
    containers: list[ContainerPublic]


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    service: Literal["hmm-local-updater"] = "hmm-local-updater"
    timestamp: str
    version: str
    update_in_progress: bool
    redis: bool
    workers: int
    docker: bool | None  # whether the workers reach the Docker engine; None until one has tried
