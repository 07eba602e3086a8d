"""Every Redis key, channel and queue name the API and the worker share."""

PREFIX = "hmm-updater"

QUEUE_NAME = "hmm-updater"
LOG_CHANNEL = f"{PREFIX}:logs"
LOG_HISTORY = f"{PREFIX}:log"  # capped list of every job's log lines, newest last
LOG_HISTORY_MAX = 1000
JOB_LOG_MAX = 2000
CONTAINERS = f"{PREFIX}:containers"  # JSON inventory the worker publishes for the API
CONTAINERS_TTL_SECONDS = 120
UPDATE_JOB_FUNC = "worker.jobs.run_update"


def job_log(job_id: str) -> str:
    return f"{PREFIX}:log:{job_id}"


def container_lock(name: str) -> str:
    return f"{PREFIX}:lock:{name}"
