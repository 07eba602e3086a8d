"""Faults on the real parts: a worker killed mid-update, Redis restarted, the engine or the registry gone."""

from __future__ import annotations

import os
import signal
import socketserver
import threading
import time
from pathlib import Path

import docker
import pytest

from tests import testbed
from tests.engine_helpers import inspect, names_with_prefix, run_app, served_version
from tests.stack import LogCollector, Stack

pytestmark = pytest.mark.docker

# The steps of an update at which the worker dies; each must end with the old container back.
KILL_STEPS = ["pulled", "stopped", "renamed", "created", "health"]
REDIS_OUTAGE_SECONDS = 8  # past the end of the health gate: the job ends while Redis is down


def journal_entries(stack: Stack) -> list[Path]:
    return list((stack.workdir / "state").glob("*.json"))


@pytest.mark.parametrize("step", KILL_STEPS)
def test_worker_killed_at_a_step_then_restarted(step: str, stack: Stack, docker_client: docker.DockerClient,
                                                images: testbed.TestImages, docker_names: testbed.Names) -> None:
    name = docker_names("app")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels,
                           environment={"USER_SETTING": "kept"}, restart_policy={"Name": "unless-stopped"})
    stack.start_api()
    doomed = stack.start_worker("doomed", UPDATER_DEBUG_PAUSE_AT=step)
    stack.wait_for_workers(1)
    accepted = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
    assert accepted.status_code == 202, accepted.text
    testbed.wait_for(lambda: f"PAUSED AT {step}" in stack.log_of("doomed"), timeout=60, what=f"the pause at {step}")

    os.kill(doomed.pid, signal.SIGKILL)  # its work horse dies with it (PR_SET_PDEATHSIG)
    doomed.wait()
    stack.start_worker("restarted")

    job = stack.wait_for_job(accepted.json()["job_id"], timeout=60)
    assert job["status"] == "failed"
    assert job["error"].startswith("worker died during the update"), job["error"]
    testbed.wait_for(lambda: not journal_entries(stack), timeout=30, what="the recovery")
    after = inspect(docker_client, name)
    assert after["Id"] == old_id and after["State"]["Running"]
    assert "USER_SETTING=kept" in after["Config"]["Env"]
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert names_with_prefix(docker_client, docker_names.prefix) == [name], "stray container left"
    testbed.wait_for(lambda: served_version(port) == "1", what="v1 serving again")


def test_redis_restarted_mid_update(tmp_path: Path, docker_client: docker.DockerClient,
                                    images: testbed.TestImages, docker_names: testbed.Names) -> None:
    redis_service = testbed.start_redis()
    stack = Stack(f"redis://127.0.0.1:{redis_service.port}/0", tmp_path)
    name = docker_names("app")
    _, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    try:
        stack.start_api()
        stack.start_worker(UPDATER_SETTLE_SECONDS="6")  # a health gate long enough to restart Redis in
        stack.wait_for_workers(1)
        with stack.websocket() as ws:
            collector = LogCollector(ws)
            collector.start()
            accepted = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
            job_id = accepted.json()["job_id"]
            testbed.wait_for(lambda: any("Checking health" in e["message"] for e in collector.of_job(job_id)),
                             timeout=60, what="the health gate")

            redis_service.stop()  # no persistence: Redis comes back empty, after the update has reported on
            testbed.wait_for(lambda: "not published" in stack.log_of("worker"), timeout=30,
                             what="a line the worker could not publish")
            time.sleep(REDIS_OUTAGE_SECONDS)
            redis_service = testbed.start_redis(port=redis_service.port, workdir=redis_service.workdir)

            collector.join(20)
            assert not collector.is_alive()
            assert ws.close_code == 1011, "the relay must end when Redis goes away"
        # The update goes on without Redis, and completes.
        testbed.wait_for(lambda: "Update completed successfully" in stack.log_of("worker"), timeout=60,
                         what="the update to finish")
        assert inspect(docker_client, name)["Config"]["Image"] == images.ref("v2")
        assert names_with_prefix(docker_client, docker_names.prefix) == [name]
        assert not list((stack.workdir / "state").glob("*.json"))
        testbed.wait_for(lambda: served_version(port) == "2", what="v2 serving")
        # The API and the worker recover without a restart, and WebSocket clients can connect again.
        testbed.wait_for(lambda: stack.get("/health").status_code == 200, timeout=90, what="healthy again")
        testbed.wait_for(lambda: stack.get("/containers").status_code == 200, what="the inventory again")
        with stack.websocket() as again:
            collector = LogCollector(again)
            collector.start()
            accepted = stack.post("/update", {"container_name": name, "new_image": images.ref("v3")})
            assert accepted.status_code == 202, accepted.text
            job = stack.wait_for_job(accepted.json()["job_id"])
            assert job["status"] == "finished", job
            testbed.wait_for(lambda: len(collector.of_job(job["id"])) >= len(job["log"]), what="live lines")
        assert inspect(docker_client, name)["Config"]["Image"] == images.ref("v3")
    finally:
        stack.stop()
        redis_service.stop()


def test_engine_unreachable_fails_jobs_clearly_and_shows_in_health(stack: Stack) -> None:
    stack.start_api()
    stack.start_worker(DOCKER_HOST="unix:///nonexistent/docker.sock")
    stack.wait_for_workers(1)
    testbed.wait_for(lambda: stack.get("/health").json()["docker"] is False, what="/health to see the engine gone")
    health = stack.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy" and health.json()["redis"] is True and health.json()["workers"] == 1

    answer = stack.post("/update?wait=true&timeout=60", {"new_image": "ghcr.io/renegadeuk/hmm-local:main-2222222"},
                        timeout=90)

    assert answer.status_code == 502, answer.text
    assert answer.json()["error"].startswith("Docker engine not reachable"), answer.json()


def test_unreachable_registry_leaves_the_container_untouched(
        stack: Stack, docker_client: docker.DockerClient, images: testbed.TestImages,
        docker_names: testbed.Names) -> None:
    # The container runs an image of a registry that has gone away (a closed port).
    gone = f"127.0.0.1:{testbed.free_port()}/hmmt-{images.run_id}/app"
    docker_client.images.get(images.ref("v1")).tag(gone, "main-1111111")
    name = docker_names("app")
    old_id, _ = run_app(docker_client, f"{gone}:main-1111111", name, docker_names.labels)
    started_at = inspect(docker_client, name)["State"]["StartedAt"]
    stack.start_api()
    stack.start_worker()
    stack.wait_for_workers(1)

    answer = stack.post("/update?wait=true&timeout=120", {"container_name": name, "new_image": f"{gone}:main-2222222"},
                        timeout=150)

    assert answer.status_code == 502, answer.text
    assert answer.json()["error"].startswith(f"Failed to pull {gone}:main-2222222"), answer.json()
    after = inspect(docker_client, name)
    assert after["Id"] == old_id and after["State"]["Running"] and after["State"]["StartedAt"] == started_at
    assert names_with_prefix(docker_client, docker_names.prefix) == [name]


class StallingRegistry(socketserver.ThreadingTCPServer):
    """Answers the engine's `GET /v2/` check, then never answers again: a pull that stalls half-way."""

    daemon_threads = True
    closed = threading.Event()

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), self.Handler)
        self.port = self.server_address[1]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                if data.startswith(b"GET /v2/ "):
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                         b"Docker-Distribution-Api-Version: registry/2.0\r\n\r\n{}")
                elif data.startswith(b"\x16"):  # a TLS handshake: plain HTTP only, as for 127.0.0.0/8
                    return
                else:
                    StallingRegistry.closed.wait(120)
                    return


def test_a_stalled_pull_times_out_and_leaves_the_container_untouched(
        stack: Stack, docker_client: docker.DockerClient, images: testbed.TestImages,
        docker_names: testbed.Names) -> None:
    registry = StallingRegistry()
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    hanging = f"127.0.0.1:{registry.port}/hmmt-{images.run_id}/app"
    docker_client.images.get(images.ref("v1")).tag(hanging, "main-1111111")
    name = docker_names("app")
    old_id, port = run_app(docker_client, f"{hanging}:main-1111111", name, docker_names.labels)
    try:
        stack.start_api()
        stack.start_worker(UPDATER_ENGINE_TIMEOUT="5")
        stack.wait_for_workers(1)

        answer = stack.post("/update?wait=true&timeout=120",
                            {"container_name": name, "new_image": f"{hanging}:main-2222222"}, timeout=150)

        assert answer.status_code == 502, answer.text
        error = answer.json()["error"]
        assert error.startswith(f"Failed to pull {hanging}:main-2222222: the engine stopped answering"), error
        after = inspect(docker_client, name)
        assert after["Id"] == old_id and after["State"]["Running"]
        assert served_version(port) == "1"
        assert names_with_prefix(docker_client, docker_names.prefix) == [name]
    finally:
        StallingRegistry.closed.set()
        registry.shutdown()
        registry.server_close()
