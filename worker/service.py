"""`hmm-updater worker` (the RQ worker and its housekeeping thread) and `hmm-updater run` (API + worker)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker, worker_registration
from rq.job import Job, JobStatus

from worker import keys
from worker.errors import ServiceUnavailable
from worker.inventory import publish_inventory, summarize
from worker.journal import Journal
from worker.private_redis import private_redis
from worker.progress import INFO, WARNING, print_sink
from worker.reaper import (
    JOB_MONITORING_INTERVAL,
    OWN_WORKER_NAMES,
    PROCESS_SPACE_FIELD,
    WORKER_TTL_SECONDS,
    fail_job,
    process_space,
    reap_dead_workers_jobs,
)
from worker.redact import redact_url
from worker.redis_client import as_text, redis_client
from worker.settings import Settings
from worker.update import recover_all

INVENTORY_INTERVAL_SECONDS = 5
REDIS_RETRY_SECONDS = 2
DONE_STATUSES = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
UNRECORDED_REASON = ("Redis was unreachable when the update ended, so its outcome was not recorded; the worker's "
                     "log has it, and GET /containers shows the image the container runs")
PR_SET_PDEATHSIG = 1
log = logging.getLogger("hmm_updater.worker")


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); no-op elsewhere."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class UpdateWorker(Worker):
    """RQ's forking worker whose work horse dies with it: an update never runs on unsupervised after the
    worker is gone, so the job can be failed and recovery can run without racing a live update."""

    stopping = False

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = super().serialize()
        data[PROCESS_SPACE_FIELD] = process_space()
        return data

    def register_birth(self) -> None:
        OWN_WORKER_NAMES.add(self.name)
        super().register_birth()  # type: ignore[no-untyped-call]

    def main_work_horse(self, job: Any, queue: Any) -> None:
        _die_with_parent(self.pid or os.getppid())
        super().main_work_horse(job, queue)

    # A Redis outage must not stop this worker: while an update runs that would kill it half-way, and
    # after one it would leave the queue without a worker.

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        try:
            super().maintain_heartbeats(job, execution)
        except RedisError as exc:
            log.warning("Worker %s: heartbeat failed (%s); the update goes on", self.name, exc)

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().heartbeat(*args, **kwargs)
        except RedisError as exc:
            log.warning("Worker %s: heartbeat failed (%s)", self.name, exc)

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        except RedisError as exc:
            log.warning("Worker %s: Redis went away as job %s ended (%s); its outcome is in this log", self.name,
                        job.id, exc)
            self._fail_unrecorded(job)

    def _fail_unrecorded(self, job: Job) -> None:
        """Once Redis is back, fail the job if it still looks active there (Redis kept its data), so its
        container's lock does not wait for the job timeout."""
        while not self.stopping:
            try:
                if Job.exists(job.id, self.connection) and job.get_status() not in DONE_STATUSES:
                    fail_job(self.connection, job, UNRECORDED_REASON)
                return
            except RedisError:
                time.sleep(REDIS_RETRY_SECONDS)

    def subscribe(self) -> None:
        """RQ's command listener, polled every second: RQ's 60 s poll makes a SIGTERM'd worker linger that
        long, since redis-py waits for the listener thread to finish."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def register_death(self) -> None:
        self.stopping = True
        super().register_death()  # type: ignore[no-untyped-call]

    def ensure_registered(self) -> None:
        """Register again after Redis lost our record (restarted without persistence)."""
        if self.stopping or self.birth_date is None:
            return
        by_queue = worker_registration.WORKERS_BY_QUEUE_KEY % keys.QUEUE_NAME
        if self.connection.exists(self.key) and self.connection.sismember(by_queue, self.key):
            return
        log.warning("Worker %s: registration lost (Redis restarted?); registering again", self.name)
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())  # type: ignore[arg-type]
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()


class Housekeeper(threading.Thread):
    """Publishes the container inventory, answers refresh requests, keeps the worker registered and
    fails the jobs of dead workers. Uses its own Redis connection: the work horse is forked from this
    process and must not inherit a connection this thread is using."""

    def __init__(self, settings: Settings, worker: UpdateWorker | None) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.settings = settings
        self.worker = worker
        self.stopping = threading.Event()
        self.last_error = ""

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        from worker.docker_engine import DockerEngine

        redis = redis_client(self.settings.redis_url)
        engine: DockerEngine | None = None
        tokens: list[str] = []
        while not self.stopping.is_set():
            try:
                try:
                    engine = engine or DockerEngine.from_env()
                    containers = [summarize(c) for c in engine.list_containers()]
                except Exception:
                    redis.set(keys.ENGINE_STATUS, "unreachable", ex=keys.ENGINE_STATUS_TTL_SECONDS)
                    raise
                redis.set(keys.ENGINE_STATUS, "ok", ex=keys.ENGINE_STATUS_TTL_SECONDS)
                publish_inventory(redis, containers)
                for token in tokens:
                    with redis.pipeline() as pipe:
                        pipe.rpush(keys.inventory_refreshed(token), "1")
                        pipe.expire(keys.inventory_refreshed(token), 30)
                        pipe.execute()
                tokens = []
                if self.worker is not None:
                    self.worker.ensure_registered()
                # An update whose process died (its job reaped, or only its work horse killed) left a
                # journal entry nobody holds: finish or roll it back now, not at the next worker start.
                if reap_dead_workers_jobs(redis) or Journal(self.settings.updater_state_dir).orphans():
                    recover_all(self.settings, print_sink)
                self.last_error = ""
                popped = redis.blpop([keys.INVENTORY_REFRESH], timeout=INVENTORY_INTERVAL_SECONDS)
                if popped:
                    tokens.append(as_text(popped[1]))
            except Exception as exc:
                if str(exc) != self.last_error:  # say it once, not every few seconds
                    log.warning("housekeeping failed: %s", exc)
                    self.last_error = str(exc)
                if engine is not None and not isinstance(exc, RedisError):
                    engine.close()
                    engine = None
                self.stopping.wait(INVENTORY_INTERVAL_SECONDS)
        if engine is not None:
            engine.close()
        redis.close()


def _connect(settings: Settings) -> Redis:
    redis = redis_client(settings.redis_url)
    try:
        redis.ping()
    except RedisError as exc:
        raise ServiceUnavailable(f"Redis at {redact_url(settings.redis_url)} is not reachable: {exc}") from exc
    return redis


def run_worker(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")
    redis = _connect(settings)
    recover_all(settings, print_sink)
    for job_id in reap_dead_workers_jobs(redis):
        print_sink(WARNING, f"⚠️ Job {job_id} failed: its worker died during the update")
    worker = UpdateWorker([keys.QUEUE_NAME], connection=redis, worker_ttl=WORKER_TTL_SECONDS,
                          job_monitoring_interval=JOB_MONITORING_INTERVAL,
                          default_result_ttl=keys.JOB_RESULT_TTL_SECONDS)
    housekeeper = Housekeeper(settings, worker)
    housekeeper.start()
    try:
        worker.work(logging_level="INFO")
    finally:
        housekeeper.stop()
        housekeeper.join(INVENTORY_INTERVAL_SECONDS + 5)


def run_all(settings: Settings) -> None:
    """The API in this process and one worker in a child process; a private Redis without REDIS_URL."""
    if "REDIS_URL" in os.environ:
        _run_api_and_worker(settings)
        return
    with private_redis() as url:
        print_sink(INFO, f"REDIS_URL is not set: started a private redis-server at {url}")
        _run_api_and_worker(settings.model_copy(update={"redis_url": url}))


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_api_and_worker(settings: Settings) -> None:
    from api.main import serve

    # uvicorn re-raises the SIGTERM it caught once it has shut down; the default action would kill us
    # before the worker and the private Redis are stopped.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    env = {**os.environ, "REDIS_URL": settings.redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker"], env=env)
    try:
        serve(settings)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
