"""Which RQ workers are alive, and failing the jobs of the ones that died mid-update."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.registry import StartedJobRegistry
from rq.utils import utcparse
from rq.worker import BaseWorker

from worker import keys
from worker.joblog import JobLog
from worker.locks import release_lock
from worker.progress import ERROR
from worker.update_metrics import record_update

WORKER_TTL_SECONDS = 30  # an idle worker heartbeats every WORKER_TTL_SECONDS - 15 s
JOB_MONITORING_INTERVAL = 10  # a busy worker heartbeats this often
HEARTBEAT_STALE_SECONDS = 60
PROCESS_SPACE_FIELD = "process_space"

DIED_REASON = ("worker died during the update; worker {worker} stopped without finishing it "
               "(killed, crashed or its host went away). Recovery finishes or rolls back the update on that "
               "host when a worker runs there again (or run `hmm-updater recover`); then update it again if needed.")


def process_space() -> str:
    """Identifies this PID namespace on this boot: a worker's pid can be checked only from inside it."""
    boot_id = Path("/proc/sys/kernel/random/boot_id")
    boot = boot_id.read_text().strip() if boot_id.exists() else "unknown-boot"
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "unknown-ns"
    return f"{boot}/{namespace}"


# Names of the workers running in this process: a record with our pid but another name is a worker that
# ran before us with the same pid (a restarted container), so it is dead.
OWN_WORKER_NAMES: set[str] = set()


def _pid_running(pid: int, name: str) -> bool:
    if pid == os.getpid():
        return name in OWN_WORKER_NAMES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(worker: BaseWorker, here: str | None = None) -> bool:
    raw = worker.connection.hmget(worker.key, ["death", "last_heartbeat", PROCESS_SPACE_FIELD])
    death, heartbeat, space = (v.decode() if isinstance(v, bytes) else v for v in raw)
    if death or not heartbeat:
        return False
    if (datetime.now(UTC) - utcparse(heartbeat)).total_seconds() > HEARTBEAT_STALE_SECONDS:
        return False
    if space and space == (here or process_space()) and worker.pid:
        return _pid_running(int(worker.pid), worker.name)
    return True


def live_workers(redis: Redis, queue_name: str = keys.QUEUE_NAME) -> list[BaseWorker]:
    here = process_space()
    return [w for w in Worker.all(queue=Queue(queue_name, connection=redis)) if is_alive(w, here)]


def _worker_of(redis: Redis, job_id: str, execution_id: str) -> str | None:
    try:
        return Execution.fetch(execution_id, job_id, connection=redis).worker_name or None
    except ValueError:
        return None  # the execution expired with its worker's heartbeats


def _worker_alive(redis: Redis, name: str | None, here: str) -> bool:
    if name is None:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=redis)
    return worker is not None and is_alive(worker, here)


def fail_job(redis: Redis, job: Job, reason: str, execution_id: str | None = None) -> None:
    """Mark a started job failed with `reason`, release its container lock and log why."""
    registry = StartedJobRegistry(queue=Queue(job.origin or keys.QUEUE_NAME, connection=redis))
    name = job.meta.get("container_name") or ""
    job.ended_at = datetime.now(UTC)
    job.meta.update(error=reason, error_type="WorkerDied", step="failed",
                    finished_at=job.ended_at.isoformat(timespec="seconds"))
    job.save_meta()  # type: ignore[no-untyped-call]
    with redis.pipeline() as pipe:
        if execution_id:
            pipe.zrem(registry.key, f"{job.id}:{execution_id}")
        record_job_failure(job, reason, pipe)
        pipe.execute()
    if name:
        release_lock(redis, name, job.id)
    ran_for = (job.ended_at - job.started_at).total_seconds() if job.started_at else 0.0
    record_update(redis, "failed", ran_for)
    JobLog(redis).publish(job.id, name, ERROR, f"❌ {reason}")


def reap_dead_workers_jobs(redis: Redis, queue_name: str = keys.QUEUE_NAME) -> list[str]:
    """Fail every started job whose worker is gone; returns their ids. One reaper at a time."""
    if not redis.set(keys.REAPER_LOCK, os.getpid(), nx=True, ex=30):
        return []
    try:
        registry = StartedJobRegistry(queue=Queue(queue_name, connection=redis))
        here = process_space()
        reaped = []
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            worker_name = _worker_of(redis, job_id, execution_id)
            if _worker_alive(redis, worker_name, here):
                continue
            job = Job.fetch(job_id, connection=redis) if Job.exists(job_id, redis) else None
            if job is None or job.get_status() != JobStatus.STARTED:
                redis.zrem(registry.key, f"{job_id}:{execution_id}")
                continue
            fail_job(redis, job, DIED_REASON.format(worker=worker_name or "(unknown)"), execution_id)
            reaped.append(job_id)
        return reaped
    finally:
        redis.delete(keys.REAPER_LOCK)
