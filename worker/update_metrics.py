"""Update outcomes and durations, counted in Redis by whichever worker ran the job, read by the API."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from worker import keys
from worker.redis_client import as_text

DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
OUTCOMES = ("updated", "unchanged", "failed")


@dataclass(frozen=True)
class UpdateMetrics:
    outcomes: dict[str, int]
    buckets: list[tuple[float, int]]  # cumulative counts per upper bound, +Inf last
    duration_sum: float
    duration_count: int


def record_update(redis: Redis, outcome: str, seconds: float) -> None:
    with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(keys.UPDATE_METRICS, f"outcome:{outcome}", 1)
        for bound in DURATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(keys.UPDATE_METRICS, f"le:{bound}", 1)
        pipe.hincrby(keys.UPDATE_METRICS, "count", 1)
        pipe.hincrbyfloat(keys.UPDATE_METRICS, "sum", seconds)
        pipe.execute()


def read_update_metrics(redis: Redis) -> UpdateMetrics:
    raw = {as_text(k): as_text(v) for k, v in redis.hgetall(keys.UPDATE_METRICS).items()}
    count = int(raw.get("count", 0))
    buckets = [(bound, int(raw.get(f"le:{bound}", 0))) for bound in DURATION_BUCKETS]
    return UpdateMetrics(
        outcomes={o: int(raw.get(f"outcome:{o}", 0)) for o in OUTCOMES},
        buckets=[*buckets, (float("inf"), count)],
        duration_sum=float(raw.get("sum", 0.0)),
        duration_count=count,
    )
