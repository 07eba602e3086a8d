"""The service end to end: real Redis, real API and worker processes, the real engine and registry."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import httpx
import pytest
import redis

from tests import testbed
from tests.fakes import github_commits
from tests.stack import LogCollector, Stack
from worker import keys
from worker.joblog import JobLog

pytestmark = pytest.mark.docker


def run_app(client: docker.DockerClient, images: testbed.TestImages, names: testbed.Names, suffix: str,
            version: str = "v1") -> int:
    """Start a test app container publishing 8080 on a loopback port; returns the port."""
    port = testbed.free_port()
    client.containers.run(images.ref(version), name=names(suffix), detach=True, labels=names.labels,
                          ports={"8080/tcp": ("127.0.0.1", port)})
    return port


def serves(port: int, version: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip() == f"version={version}"
    except httpx.HTTPError:
        return False


def image_of(client: docker.DockerClient, name: str) -> str:
    return str(client.api.inspect_container(name)["Config"]["Image"])


def test_update_is_queued_streamed_and_done(stack: Stack, docker_client: docker.DockerClient,
                                            images: testbed.TestImages, docker_names: testbed.Names) -> None:
    port = run_app(docker_client, images, docker_names, "app")
    name = docker_names("app")
    stack.start_api()
    stack.start_worker()
    stack.wait_for_workers(1)
    testbed.wait_for(lambda: serves(port, "1"), what="v1 serving")
    with stack.websocket() as ws:
        collector = LogCollector(ws)
        collector.start()

        accepted = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        second = stack.post("/update", {"container_name": name, "new_image": images.ref("v3")})
        assert second.status_code == 409
        assert second.json()["success"] is False and second.json()["job_id"] == job_id

        job = stack.wait_for_job(job_id)
        assert job["status"] == "finished", job
        testbed.wait_for(lambda: len(collector.of_job(job_id)) >= len(job["log"]), what="every line over WS")
    assert [e["id"] for e in collector.of_job(job_id)] == [e["id"] for e in job["log"]]
    assert len(job["log"]) >= 4 and job["log"][-1]["message"].startswith("✅")
    assert job["container_name"] == name and job["old_image"] == images.ref("v1")
    assert job["new_image"] == images.ref("v2") and job["container_id"]
    assert image_of(docker_client, name) == images.ref("v2")
    assert docker_client.api.inspect_container(name)["Id"] == job["container_id"]
    testbed.wait_for(lambda: serves(port, "2"), what="v2 serving on the same port")

    waited = stack.post("/update?wait=true&timeout=120", {"container_name": name,
                                                           "new_image": images.ref("v3")}, timeout=150)
    assert waited.status_code == 200, waited.text
    body = waited.json()
    assert body["success"] is True and body["container_id"] and body["timestamp"] and body["message"]
    assert image_of(docker_client, name) == images.ref("v3")
    testbed.wait_for(lambda: serves(port, "3"), what="v3 serving")
    assert [j["id"] for j in stack.get("/jobs").json()["jobs"]] == [body["job_id"], job_id]


def test_two_workers_update_five_containers_at_once(stack: Stack, docker_client: docker.DockerClient,
                                                    images: testbed.TestImages,
                                                    docker_names: testbed.Names) -> None:
    ports = {docker_names(f"app{n}"): run_app(docker_client, images, docker_names, f"app{n}") for n in range(5)}
    stack.start_api()
    stack.start_worker("worker-a")
    stack.start_worker("worker-b")
    stack.wait_for_workers(2)
    job_ids = []
    for name in ports:
        response = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["job_id"])

    jobs = [stack.wait_for_job(job_id, timeout=180) for job_id in job_ids]

    assert [j["status"] for j in jobs] == ["finished"] * 5, jobs
    for name, port in ports.items():
        assert image_of(docker_client, name) == images.ref("v2")
        testbed.wait_for(lambda p=port: serves(p, "2"), what=f"{name} serving v2")
    spans = sorted((j["started_at"], j["ended_at"]) for j in jobs)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), \
        f"no two updates overlapped: {spans}"
    client = redis.Redis.from_url(stack.redis_url)
    workers = {client.hget(f"rq:job:{job_id}", "worker_name") for job_id in job_ids}
    client.close()
    assert len(workers) == 2


def test_worker_killed_mid_update_fails_the_job_with_a_reason(stack: Stack, docker_client: docker.DockerClient,
                                                              images: testbed.TestImages,
                                                              docker_names: testbed.Names) -> None:
    run_app(docker_client, images, docker_names, "app")
    name = docker_names("app")
    stack.start_api()
    doomed = stack.start_worker("doomed", UPDATER_DEBUG_PAUSE_AT="started")
    stack.wait_for_workers(1)
    job_id = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")}).json()["job_id"]
    testbed.wait_for(lambda: "PAUSED AT started" in stack.log_of("doomed"), timeout=60, what="the pause")
    assert stack.get(f"/jobs/{job_id}").json()["status"] == "started"
    # A worker starting beside a live one must not recover (roll back) the update that one is running.
    stack.start_worker("rescuer")
    testbed.wait_for(lambda: "being updated by a live process; left alone" in stack.log_of("rescuer"),
                     what="the rescuer leaving the live update alone")
    assert stack.get(f"/jobs/{job_id}").json()["status"] == "started"
    assert "Nothing to recover" not in stack.log_of("rescuer")

    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()

    job = stack.wait_for_job(job_id, timeout=90)
    assert job["status"] == "failed"
    assert job["error"].startswith("worker died during the update"), job["error"]
    assert job["log"][-1]["level"] == "ERROR"
    # The surviving worker's housekeeping recovers the container once the job is reaped.
    testbed.wait_for(lambda: f"{name} runs {images.ref('v1')} again" in stack.log_of("rescuer"), timeout=60,
                     what="recovery by the surviving worker")
    assert docker_client.api.inspect_container(name)["State"]["Running"]
    again = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
    assert again.status_code == 202, again.text  # the dead job's lock was released
    assert stack.wait_for_job(again.json()["job_id"])["status"] == "finished"
    assert image_of(docker_client, name) == images.ref("v2")


def test_health_follows_redis_down_and_back(tmp_path: Path) -> None:
    service = testbed.start_redis()
    stack = Stack(f"redis://127.0.0.1:{service.port}/0", tmp_path)
    try:
        stack.start_api()
        stack.start_worker()
        stack.wait_for_workers(1)
        assert stack.get("/health").json()["redis"] is True

        service.stop()
        testbed.wait_for(lambda: stack.get("/health").status_code == 503, what="503 with Redis down")
        assert stack.get("/health").json()["redis"] is False

        service = testbed.start_redis(port=service.port, workdir=service.workdir)
        testbed.wait_for(lambda: stack.get("/health").status_code == 200, timeout=90,
                         what="200 once Redis is back and the worker registered again")
        assert stack.get("/health").json()["workers"] == 1
    finally:
        stack.stop()
        service.stop()


def test_websocket_clients_leave_no_redis_connections(tmp_path: Path) -> None:
    service = testbed.start_redis()
    stack = Stack(f"redis://127.0.0.1:{service.port}/0", tmp_path)
    client = redis.Redis(port=service.port, client_name="test")  # the test's own connections are named

    def api_connections() -> list[dict[str, str]]:
        return [c for c in client.client_list() if c["name"] != "test"]

    try:
        stack.start_api()
        log = JobLog(client, echo=False)
        log.publish("job", "app", "INFO", "from the history")

        def come_and_go(n: int) -> None:
            with stack.websocket() as ws:
                # The replayed line shows the relay has subscribed; then a live line must come through.
                assert json.loads(ws.recv(timeout=10))["message"] == "from the history"
                client.publish(keys.LOG_CHANNEL, json.dumps({**log.history()[0], "id": f"live-{n}"}))
                while json.loads(ws.recv(timeout=10))["id"] != f"live-{n}":
                    pass

        def subscribers() -> int:
            return sum(c["sub"] != "0" for c in api_connections())

        come_and_go(-1)
        # One shared subscription serves every client, however many come and go.
        assert subscribers() == 1
        baseline = len(api_connections())

        for n in range(50):
            come_and_go(n)
        testbed.wait_for(lambda: len(api_connections()) == baseline, timeout=20,
                         what=f"the API's Redis connections back to {baseline}")
        assert subscribers() == 1

        # Concurrent clients: the pool may keep one idle connection per client that was concurrent, no more.
        for start in range(0, 50, 10):
            threads = [threading.Thread(target=come_and_go, args=(n,)) for n in range(start, start + 10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        assert subscribers() == 1
        assert len(api_connections()) <= baseline + 10
    finally:
        client.close()
        stack.stop()
        service.stop()


def test_omitted_image_resolves_to_the_newest_commit_with_an_image(
        stack: Stack, docker_client: docker.DockerClient, images: testbed.TestImages,
        docker_names: testbed.Names) -> None:
    run_app(docker_client, images, docker_names, "app")
    name = docker_names("app")
    sha_of = {key: tag.removeprefix("main-") + "0" * 33 for key, tag in images.tags.items()}
    github = github_commits(["f" * 40, sha_of["v2"], sha_of["v1"]])  # the newest has no image yet
    stack.env = {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "o/r"}
    try:
        stack.start_api()
        stack.start_worker()
        stack.wait_for_workers(1)
        accepted = stack.post("/update", {"container_name": name})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["new_image"] == images.ref("v2")
        assert stack.wait_for_job(accepted.json()["job_id"])["status"] == "finished"
        assert image_of(docker_client, name) == images.ref("v2")
    finally:
        github.shutdown()
        github.server_close()


def test_unknown_container_is_404_with_a_live_worker(stack: Stack, docker_names: testbed.Names,
                                                     docker_client: docker.DockerClient) -> None:
    stack.start_api()
    stack.start_worker()
    stack.wait_for_workers(1)
    testbed.wait_for(lambda: stack.get("/containers").status_code == 200, what="the inventory")
    response = stack.post("/update", {"container_name": docker_names("ghost"), "new_image": "busybox:1"})
    assert response.status_code == 404
    assert response.json()["error"] == f"Container '{docker_names('ghost')}' not found"


def test_run_brings_its_own_redis_when_redis_url_is_unset(tmp_path: Path) -> None:
    port = testbed.free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"UPDATER_HOST": "127.0.0.1", "UPDATER_PORT": str(port), "UPDATER_STATE_DIR": str(tmp_path / "state")}
    out = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", "run"], env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        testbed.wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/health").json()["workers"] == 1,
                         timeout=60, what="API and worker up")
        found = re.search(r"private redis-server at redis://127\.0\.0\.1:(\d+)/0",
                          (tmp_path / "run.log").read_text())
        assert found, (tmp_path / "run.log").read_text()
        private = redis.Redis(port=int(found.group(1)), socket_connect_timeout=1)
        assert private.ping()

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

        with pytest.raises(redis.ConnectionError):
            private.ping()
        private.close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.close()


def test_an_idle_worker_stops_promptly_on_sigterm(stack: Stack) -> None:
    stack.start_api()
    worker = stack.start_worker("stopping")
    stack.wait_for_workers(1)
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    # Within docker stop's default 10 s grace, so the engine never has to SIGKILL an idle worker.
    assert time.monotonic() - started < 8, stack.log_of("stopping")
