"""Prometheus metrics: HTTP requests counted here, job outcomes and durations read from Redis at scrape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from worker import keys
from worker.reaper import live_workers
from worker.update_metrics import read_update_metrics


class UpdaterCollector(Collector):
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = read_update_metrics(self.redis)
            queue = Queue(keys.QUEUE_NAME, connection=self.redis)
            queued, started = queue.count, queue.started_job_registry.get_job_count(cleanup=False)
            workers = len(live_workers(self.redis))
        except RedisError:
            return
        outcomes = CounterMetricFamily("hmm_updater_jobs", "Update jobs by outcome", labels=["outcome"])
        for outcome, count in metrics.outcomes.items():
            outcomes.add_metric([outcome], count)
        yield outcomes
        yield HistogramMetricFamily(
            "hmm_updater_update_duration_seconds", "Time from job start to outcome",
            buckets=[("+Inf" if b == float("inf") else str(b), n) for b, n in metrics.buckets],
            sum_value=metrics.duration_sum,
        )
        jobs = GaugeMetricFamily("hmm_updater_queue_jobs", "Jobs waiting or running", labels=["state"])
        jobs.add_metric(["queued"], queued)
        jobs.add_metric(["started"], started)
        yield jobs
        yield GaugeMetricFamily("hmm_updater_workers", "Live update workers", value=workers)


class Metrics:
    def __init__(self, redis: Redis) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hmm_updater_http_requests", "HTTP requests served",
                                ["method", "route", "status"], registry=self.registry)
        self.registry.register(UpdaterCollector(redis))

    async def middleware(self, request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, path, str(response.status_code)).inc()
        return response
