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

JOB_LOG_TTL_SECONDS = 7 * 24 * 3600  # a job's own log outlives its RQ result by this much at most
JOB_RESULT_TTL_SECONDS = 7 * 24 * 3600
LOCK_TTL_MARGIN_SECONDS = 3600  # a queued job's lock survives this long in the queue before it runs
INVENTORY_REFRESH = f"{PREFIX}:inventory:refresh"  # list of tokens: the API asks a worker to publish now
ENGINE_STATUS = f"{PREFIX}:engine"  # "ok" or "unreachable", set by each worker's housekeeping
ENGINE_STATUS_TTL_SECONDS = 60
REAPER_LOCK = f"{PREFIX}:reaper"  # one worker at a time fails the jobs of dead workers
UPDATE_METRICS = f"{PREFIX}:metrics"  # hash: job outcome counters and the update duration histogram


def inventory_refreshed(token: str) -> str:
    return f"{PREFIX}:inventory:refreshed:{token}"
