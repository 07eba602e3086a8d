"""200 concurrent POST /update across 20 containers, 4 workers: one job per container at a time, no 5xx."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import httpx
import pytest

from tests import testbed
from tests.engine_helpers import inspect, names_with_prefix
from tests.stack import Stack

pytestmark = pytest.mark.docker

CONTAINERS = 20
REQUESTS = 200
WORKERS = 4


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(redis_url, tmp_path, env={"UPDATER_API_TOKEN": "load-test-token"})
    yield s
    s.stop()


@pytest.mark.timeout(300)
def test_concurrent_requests_make_one_job_per_container_at_a_time(
        stack: Stack, docker_client: docker.DockerClient, images: testbed.TestImages,
        docker_names: testbed.Names) -> None:
    names = [docker_names(f"app{n:02d}") for n in range(CONTAINERS)]
    for name in names:
        docker_client.containers.run(images.ref("v1"), name=name, detach=True, labels=docker_names.labels)
    stack.start_api()
    for n in range(WORKERS):
        stack.start_worker(f"worker-{n}")
    stack.wait_for_workers(WORKERS)
    testbed.wait_for(lambda: {c["name"] for c in stack.get("/containers").json()["containers"]} >= set(names),
                     what="every container in the inventory")
    targets = [names[n % CONTAINERS] for n in range(REQUESTS)]
    random.Random(5).shuffle(targets)

    with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=60,
                      limits=httpx.Limits(max_connections=REQUESTS)) as client, \
            ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(lambda name: client.post("/update", json={
            "container_name": name, "new_image": images.ref("v2")}), targets))

    assert sorted({a.status_code for a in answers}) in ([202], [202, 409]), [a.text for a in answers if
                                                                            a.status_code not in (202, 409)]
    jobs_of: dict[str, set[str]] = defaultdict(set)
    for name, answer in zip(targets, answers, strict=True):
        body = answer.json()
        assert body["success"] is (answer.status_code == 202)
        assert body["job_id"], body  # a 409 names the job that holds the container
        if answer.status_code == 202:
            jobs_of[name].add(body["job_id"])
    assert set(jobs_of) == set(names), "every container got a job"
    assert sum(a.status_code == 409 for a in answers) >= REQUESTS // 2, "most requests came while a job was active"

    jobs = {job_id: stack.wait_for_job(job_id, timeout=240) for ids in jobs_of.values() for job_id in ids}
    assert {j["status"] for j in jobs.values()} == {"finished"}, [j["error"] for j in jobs.values()]
    for name, ids in jobs_of.items():
        spans = sorted((jobs[i]["started_at"], jobs[i]["ended_at"]) for i in ids)
        for (_, ended), (started, _) in itertools.pairwise(spans):
            assert ended <= started, f"two jobs of {name} overlapped: {spans}"
        assert inspect(docker_client, name)["Config"]["Image"] == images.ref("v2")
    assert names_with_prefix(docker_client, docker_names.prefix) == sorted(names), "stray containers"
