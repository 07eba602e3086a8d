"""Fan-out: many containers updated at once by 1, 2 and 4 workers; wall time from the first POST to the last job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker

from bench.images import ImageBuilder, ImagePair
from bench.phases import job_phases, mean_phases
from bench.services import Updater, app_labels
from tests import testbed

JOB_TIMEOUT = 600.0


@dataclass
class ThroughputResult:
    workers: int
    containers: int
    wall_seconds: float
    finished: int
    failed: int
    submit_seconds: float  # the POSTs themselves
    mean_job_seconds: float  # one job's first log line to its last
    mean_phases: dict[str, float]


def _create_apps(client: docker.DockerClient, images: ImageBuilder, ref: str, count: int, workers: int) -> list[str]:
    # Names new in each round, so waiting for them in the inventory waits for this round's workers.
    names = [f"{images.prefix}-fan{workers}-{i:02d}" for i in range(count)]
    for name in names:
        client.containers.run(ref, name=name, detach=True, labels=app_labels(images.run_id))
    return names


def _remove_apps(client: docker.DockerClient, names: list[str]) -> None:
    for name in names:
        for container in client.containers.list(all=True, filters={"name": name}):
            container.remove(force=True)


def _jobs_done(updater: Updater, job_ids: set[str]) -> list[dict[str, object]] | None:
    jobs = [j for j in updater.get("/jobs?limit=500")["jobs"] if j["id"] in job_ids]
    if len(jobs) < len(job_ids) or any(j["status"] not in ("finished", "failed") for j in jobs):
        return None
    return jobs


def fan_out(client: docker.DockerClient, updater: Updater, images: ImageBuilder, pair: ImagePair,
            workers: int, count: int, progress: Callable[[str], None]) -> ThroughputResult:
    old, new = (pair.refs[v] for v in pair.refs)
    if not images.present(new):
        images.pull(new)  # the first job would otherwise pull for all: this measures the updates themselves
    names = _create_apps(client, images, old, count, workers)
    try:
        updater.start_workers(workers)
        testbed.wait_for(lambda: set(names) <= {c["name"] for c in updater.get("/containers")["containers"]},
                         timeout=30, what="the containers in the inventory")
        progress(f"{count} containers and {workers} worker(s) ready; updating")
        started = time.monotonic()
        job_ids = set()
        for name in names:
            response = updater.http.post(f"{updater.url}/update", json={"container_name": name, "new_image": new})
            response.raise_for_status()
            job_ids.add(response.json()["job_id"])
        submitted = time.monotonic() - started
        deadline = started + JOB_TIMEOUT
        while (jobs := _jobs_done(updater, job_ids)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} updates did not finish within {JOB_TIMEOUT:g} s")
            time.sleep(0.1)
        wall = time.monotonic() - started
    finally:
        updater.stop_workers()
        _remove_apps(client, names)
    logs = [_job_log(updater, str(j["id"])) for j in jobs]
    finished = sum(1 for j in jobs if j["status"] == "finished")
    return ThroughputResult(workers, count, wall, finished, len(jobs) - finished, submitted,
                            sum(_seconds(log) for log in logs) / len(logs),
                            mean_phases([job_phases(log) for log in logs]))


def _job_log(updater: Updater, job_id: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = updater.get(f"/jobs/{job_id}")["log"]
    return log


def _seconds(log: list[dict[str, Any]]) -> float:
    return (datetime.fromisoformat(log[-1]["time"]) - datetime.fromisoformat(log[0]["time"])).total_seconds()


def throughput_bench(client: docker.DockerClient, updater: Updater, images: ImageBuilder, pair: ImagePair,
                     worker_counts: tuple[int, ...], count: int,
                     progress: Callable[[str], None]) -> list[ThroughputResult]:
    results = []
    for workers in worker_counts:
        result = fan_out(client, updater, images, pair, workers, count, progress)
        results.append(result)
        progress(f"{count} containers, {workers} worker(s): {result.wall_seconds:.1f} s "
                 f"({result.finished} finished, {result.failed} failed)")
    return results
