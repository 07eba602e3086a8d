"""Turning `POST /update` into a queued job: validate, look the container up, resolve, lock and enqueue."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from redis import Redis
from redis.exceptions import WatchError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from api.schemas import UpdateRequest
from worker import keys, policy
from worker.errors import ContainerNotFound, ImageResolutionFailed, ServiceUnavailable, UpdateInProgress
from worker.inventory import ContainerInfo, read_inventory
from worker.reaper import live_workers
from worker.redis_client import as_text
from worker.reference import parse_image_reference, validate_container_name
from worker.settings import Settings

ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
REFRESH_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class PlannedUpdate:
    container_name: str
    new_image: str
    old_image: str | None
    force: bool

    @property
    def description(self) -> str:
        return f"Update {self.container_name} → {self.new_image}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def active_job(redis: Redis, job_id: str) -> bool:
    try:
        return Job.fetch(job_id, connection=redis).get_status() in ACTIVE
    except NoSuchJobError:
        return False


def _holder_if_active(redis: Redis, name: str) -> str | None:
    holder = redis.get(keys.container_lock(name))
    if holder is None:
        return None
    job_id = as_text(holder)
    return job_id if active_job(redis, job_id) else None


def _request_inventory_refresh(redis: Redis) -> bool:
    """Ask a worker to publish the inventory now; True when one did within REFRESH_WAIT_SECONDS."""
    token = secrets.token_hex(8)
    redis.rpush(keys.INVENTORY_REFRESH, token)
    answered = redis.blpop([keys.inventory_refreshed(token)], timeout=REFRESH_WAIT_SECONDS)
    if not answered:
        redis.lrem(keys.INVENTORY_REFRESH, 0, token)
    return answered is not None


def find_container(redis: Redis, name: str) -> ContainerInfo | None:
    """The container from the worker's inventory; None when no inventory is published.

    A container missing from a published inventory may have been created since the last publication,
    so ask for a fresh one before answering ContainerNotFound."""
    inventory = read_inventory(redis)
    if inventory is None and _request_inventory_refresh(redis):  # a worker that just started
        inventory = read_inventory(redis)
    if inventory is None:
        return None
    for attempt in range(2):
        for container in inventory:
            if container["name"] == name:
                return container
        if attempt == 0 and _request_inventory_refresh(redis):
            inventory = read_inventory(redis) or []
    raise ContainerNotFound(name)


def resolve_newest(settings: Settings, current_image: str) -> str:
    from worker.resolver import ImageResolver

    resolver = ImageResolver.from_settings(settings)
    try:
        return resolver.latest(current_image)
    except httpx.HTTPError as exc:
        raise ImageResolutionFailed(f"Could not resolve the newest image for {current_image}: {exc}") from exc
    finally:
        resolver.close()


def plan_update(request: UpdateRequest, settings: Settings, redis: Redis) -> PlannedUpdate:
    name = validate_container_name(request.container_name or settings.target_container)
    new_image = str(parse_image_reference(request.new_image)) if request.new_image else None
    if not live_workers(redis):
        raise ServiceUnavailable("No update worker is running: start one with `hmm-updater worker`")
    holder = _holder_if_active(redis, name)
    if holder:
        raise UpdateInProgress(name, holder)
    container = find_container(redis, name)
    # Without an inventory the worker's own check (on the engine's inspect) is the only one.
    if container is not None:
        policy.check_container(name, container.get("labels"), settings)
    old_image = container["image"] if container else None
    if new_image is None:
        if old_image is None:
            raise ServiceUnavailable("No worker has published the container inventory yet, so the newest "
                                     "image cannot be resolved; retry shortly or give new_image")
        new_image = resolve_newest(settings, old_image)
    if old_image is not None:
        policy.check_image(name, old_image, new_image, settings)
    return PlannedUpdate(name, new_image, old_image, request.force)


def enqueue_update(redis: Redis, queue: Queue, plan: PlannedUpdate, settings: Settings) -> Job:
    """Take the container's lock and enqueue the job in one transaction; UpdateInProgress when held."""
    job_id = uuid.uuid4().hex
    lock = keys.container_lock(plan.container_name)
    meta = {"container_name": plan.container_name, "old_image": plan.old_image, "new_image": plan.new_image,
            "step": "queued", "requested_at": _now()}
    with redis.pipeline() as pipe:
        while True:
            try:
                pipe.watch(lock)  # type: ignore[no-untyped-call]
                holder = pipe.get(lock)
                if holder is not None and active_job(redis, as_text(holder)):
                    raise UpdateInProgress(plan.container_name, as_text(holder))
                pipe.multi()
                pipe.set(lock, job_id, ex=settings.updater_job_timeout + keys.LOCK_TTL_MARGIN_SECONDS)
                job = queue.enqueue_call(
                    keys.UPDATE_JOB_FUNC,
                    kwargs={"container_name": plan.container_name, "new_image": plan.new_image,
                            "force": plan.force},
                    job_id=job_id, timeout=settings.updater_job_timeout,
                    result_ttl=keys.JOB_RESULT_TTL_SECONDS, description=plan.description, meta=meta,
                    pipeline=pipe,
                )
                pipe.execute()
                return job
            except WatchError:
                continue


def wait_until_done(job: Job, timeout: float) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = job.get_status(refresh=True)
        if status in DONE or time.monotonic() >= deadline:
            job.refresh()  # type: ignore[no-untyped-call]
            return status
        time.sleep(0.05)
