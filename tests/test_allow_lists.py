"""The worker checks the allow-lists itself, on the engine's inspect: a job that got past the API (an older
API, a forged queue entry, a stale inventory) still cannot touch a container or image it may not."""

from __future__ import annotations

import docker
import pytest
import redis
from rq import Queue

from api.updates import PlannedUpdate, enqueue_update
from tests import testbed
from tests.engine_helpers import inspect, run_app
from tests.stack import Stack
from worker import keys
from worker.settings import Settings

pytestmark = pytest.mark.docker


def enqueue_behind_the_apis_back(redis_url: str, name: str, image: str) -> str:
    client = redis.Redis.from_url(redis_url)
    job = enqueue_update(client, Queue(keys.QUEUE_NAME, connection=client), PlannedUpdate(name, image, None, False),
                         Settings())
    client.close()
    return str(job.id)


def test_the_worker_refuses_what_the_allow_lists_forbid(stack: Stack, docker_client: docker.DockerClient,
                                                        images: testbed.TestImages,
                                                        docker_names: testbed.Names) -> None:
    private, enabled = docker_names("private"), docker_names("enabled")
    private_id, _ = run_app(docker_client, images.ref("v1"), private, {"hmmtest.run": images.run_id})
    enabled_id, _ = run_app(docker_client, images.ref("v1"), enabled, docker_names.labels)
    stack.start_api()
    stack.start_worker()
    stack.wait_for_workers(1)

    refused = stack.post("/update", {"container_name": private, "new_image": images.ref("v2")})
    assert refused.status_code == 403, refused.text
    assert private not in {c["name"] for c in stack.get("/containers").json()["containers"]}
    jobs = [stack.wait_for_job(enqueue_behind_the_apis_back(stack.redis_url, private, images.ref("v2"))),
            stack.wait_for_job(enqueue_behind_the_apis_back(stack.redis_url, enabled, f"{images.base}"))]

    assert [j["status"] for j in jobs] == ["failed", "failed"]
    assert jobs[0]["error"].startswith(f"Container '{private}' may not be updated"), jobs[0]["error"]
    assert jobs[1]["error"].startswith(f"Image {images.base} is not allowed for '{enabled}'"), jobs[1]["error"]
    assert inspect(docker_client, private)["Id"] == private_id
    assert inspect(docker_client, enabled)["Id"] == enabled_id
    waited = stack.post("/update?wait=true&timeout=60", {"container_name": enabled, "new_image": images.base},
                        timeout=90)
    assert waited.status_code == 403 and "is not allowed" in waited.json()["error"]
