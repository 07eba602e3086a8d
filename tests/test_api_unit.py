"""The API and the job function against fakeredis: routing, validation, error shapes, locks, the log relay."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker
from rq.job import Job

from api import updates
from api.main import create_app
from tests import testbed
from tests.fakes import FakeResolver, inventory_entry
from worker import keys, locks
from worker.errors import ImageResolutionFailed, UpdateRolledBack
from worker.inventory import ContainerInfo, publish_inventory
from worker.joblog import JobLog
from worker.progress import INFO, ProgressSink
from worker.settings import Settings
from worker.transaction import UpdateResult

with warnings.catch_warnings():
    # Starlette 1.x asks for the `httpx2` fork, which is not packaged here; httpx works the same for tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OLD = "ghcr.io/renegadeuk/hmm-local:main-1111111"
NEW = "ghcr.io/renegadeuk/hmm-local:main-2222222"


ENABLED = {"hmm-updater.enable": "true"}


def container(name: str, image: str = OLD, labels: dict[str, str] | None = None) -> ContainerInfo:
    return inventory_entry(name, image, labels)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis(server: fakeredis.FakeServer) -> Iterator[Redis]:
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
def worker(redis: Redis) -> SimpleWorker:
    """A registered worker, so the API sees a live one; tests run queued jobs with run_jobs()."""
    w = SimpleWorker([keys.QUEUE_NAME], connection=redis)
    w.register_birth()  # type: ignore[no-untyped-call]
    return w


@pytest.fixture
def client(server: fakeredis.FakeServer, redis: Redis) -> Iterator[TestClient]:
    settings = Settings(redis_url="redis://unused:1/0", target_container="hmm-local")
    app = create_app(settings, redis=redis, async_redis=fakeredis.FakeAsyncRedis(server=server))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def perform(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Replace the engine: every update succeeds after reporting two steps."""
    calls: list[tuple[str, str | None]] = []

    def fake_perform(name: str, new_image: str | None, settings: Settings, sink: ProgressSink,
                     *, force: bool = False, enforce_policy: bool = False) -> UpdateResult:
        calls.append((name, new_image))
        sink(INFO, f"Pulling {new_image}")
        sink(INFO, "Started the new container")
        return UpdateResult(name, "d" * 64, OLD, new_image or NEW, True, f"Updated {name} to {new_image}")

    monkeypatch.setattr("worker.update.perform_update", fake_perform)
    return calls


def run_jobs(redis: Redis) -> None:
    SimpleWorker([keys.QUEUE_NAME], connection=redis).work(burst=True)


def post_wait_and_run(client: TestClient, redis: Redis) -> Any:
    """POST /update?wait=true from a thread, run the queued job, return the answer the waiter got."""
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(
        client.post("/update?wait=true&timeout=30", json={"new_image": NEW})))
    waiting.start()
    testbed.wait_for(lambda: Queue(keys.QUEUE_NAME, connection=redis).count == 1, what="the job queued")
    run_jobs(redis)
    waiting.join(30)
    return answers[0]


def test_post_update_queues_a_job_that_the_worker_runs(client: TestClient, redis: Redis, worker: SimpleWorker,
                                                       perform: list[tuple[str, str | None]]) -> None:
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update", json={"container_name": "hmm-local", "new_image": NEW})
    assert response.status_code == 202
    body = response.json()
    assert body["success"] is True and body["container_name"] == "hmm-local" and body["new_image"] == NEW
    assert body["status"] == "queued"
    job = Job.fetch(body["job_id"], connection=redis)
    assert job.description == f"Update hmm-local → {NEW}"
    assert job.meta["old_image"] == OLD and job.meta["step"] == "queued"
    assert locks.lock_holder(redis, "hmm-local") == job.id

    run_jobs(redis)

    assert perform == [("hmm-local", NEW)]
    detail = client.get(f"/jobs/{job.id}").json()
    assert detail["status"] == "finished" and detail["container_id"] == "d" * 64
    assert detail["old_image"] == OLD and detail["new_image"] == NEW and detail["step"] == "finished"
    assert detail["result"]["updated"] is True and detail["error"] is None
    messages = [line["message"] for line in detail["log"]]
    assert f"Pulling {NEW}" in messages and "Started the new container" in messages
    assert {line["job_id"] for line in detail["log"]} == {job.id}
    assert locks.lock_holder(redis, "hmm-local") is None
    listed = client.get("/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job.id]


def test_omitted_name_means_target_container(client: TestClient, redis: Redis, worker: SimpleWorker) -> None:
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update", json={"new_image": NEW})
    assert response.status_code == 202 and response.json()["container_name"] == "hmm-local"


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"container_name": "-bad name", "new_image": NEW}, 400, "Invalid container name"),
    ({"container_name": "hmm-local", "new_image": "no spaces:allowed"}, 400, "nvalid"),
    ({"container_name": "hmm-local", "new_image": NEW, "colour": "red"}, 422, "colour"),
    ({"container_name": 5}, 422, "container_name"),
])
def test_bad_input_answers_the_error_shape(client: TestClient, worker: SimpleWorker, body: dict[str, Any],
                                           status: int, fragment: str) -> None:
    response = client.post("/update", json=body)
    assert response.status_code == status
    assert response.json()["success"] is False and fragment in response.json()["error"]


def test_non_json_body_is_rejected(client: TestClient, worker: SimpleWorker) -> None:
    response = client.post("/update", content=b"container_name=x", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_unknown_container_is_404_when_the_inventory_lacks_it(client: TestClient, redis: Redis,
                                                              worker: SimpleWorker,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates, "REFRESH_WAIT_SECONDS", 0.1)
    publish_inventory(redis, [container("other")])
    response = client.post("/update", json={"container_name": "ghost", "new_image": NEW})
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "Container 'ghost' not found"}
    assert redis.llen(keys.INVENTORY_REFRESH) == 0  # the unanswered refresh request was withdrawn


def test_second_request_for_the_same_container_is_409(client: TestClient, redis: Redis, worker: SimpleWorker,
                                                      perform: list[tuple[str, str | None]]) -> None:
    publish_inventory(redis, [container("hmm-local")])
    first = client.post("/update", json={"new_image": NEW}).json()
    second = client.post("/update", json={"new_image": NEW})
    assert second.status_code == 409
    assert second.json()["success"] is False and second.json()["job_id"] == first["job_id"]
    run_jobs(redis)
    assert client.post("/update", json={"new_image": NEW}).status_code == 202


def test_a_lock_left_by_a_finished_job_does_not_block(client: TestClient, redis: Redis,
                                                      worker: SimpleWorker) -> None:
    publish_inventory(redis, [container("hmm-local")])
    redis.set(keys.container_lock("hmm-local"), "no-such-job")
    response = client.post("/update", json={"new_image": NEW})
    assert response.status_code == 202
    assert locks.lock_holder(redis, "hmm-local") == response.json()["job_id"]


def test_no_live_worker_is_503(client: TestClient, redis: Redis) -> None:
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update", json={"new_image": NEW})
    assert response.status_code == 503
    assert "No update worker" in response.json()["error"]
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["workers"] == 0 and health.json()["redis"] is True


def test_redis_down_is_503() -> None:
    dead = Redis(port=testbed.free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"), redis=dead)
    with TestClient(app) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["redis"] is False and health.json()["status"] == "unhealthy"
        response = client.post("/update", json={"new_image": NEW})
        assert response.status_code == 503 and response.json()["success"] is False
        assert "Redis is not reachable" in response.json()["error"]


def test_health_reports_the_seed_fields(client: TestClient, worker: SimpleWorker) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["service"] == "hmm-local-updater"
    assert body["workers"] == 1 and body["redis"] is True and body["update_in_progress"] is False
    assert body["version"] and body["timestamp"]


def test_failed_update_keeps_the_error_and_wait_answers_it(client: TestClient, redis: Redis,
                                                            worker: SimpleWorker,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(name: str, new_image: str | None, settings: Settings, sink: ProgressSink,
                *, force: bool = False, enforce_policy: bool = False) -> UpdateResult:
        sink(INFO, "Starting the new container")
        raise UpdateRolledBack("new container exited with code 3", OLD)

    monkeypatch.setattr("worker.update.perform_update", failing)
    publish_inventory(redis, [container("hmm-local")])
    response = post_wait_and_run(client, redis)
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert body["error"] == f"new container exited with code 3; rolled back to {OLD}"
    detail = client.get(f"/jobs/{body['job_id']}").json()
    assert detail["status"] == "failed" and detail["error"] == body["error"]
    assert detail["log"][-1]["level"] == "ERROR"
    assert locks.lock_holder(redis, "hmm-local") is None


def test_wait_answers_the_seed_success_shape(client: TestClient, redis: Redis, worker: SimpleWorker,
                                             perform: list[tuple[str, str | None]]) -> None:
    publish_inventory(redis, [container("hmm-local")])
    response = post_wait_and_run(client, redis)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["container_id"] == "d" * 64
    assert body["message"] == f"Updated hmm-local to {NEW}" and body["timestamp"]


def test_wait_timeout_answers_202_with_the_job(client: TestClient, redis: Redis, worker: SimpleWorker) -> None:
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update?wait=true&timeout=0.3", json={"new_image": NEW})
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and "Still queued" in response.json()["message"]


def test_omitted_image_is_resolved_from_the_current_one(client: TestClient, redis: Redis, worker: SimpleWorker,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = FakeResolver(NEW)
    monkeypatch.setattr("worker.resolver.ImageResolver.from_settings", lambda settings: resolver)
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update", json={"container_name": "hmm-local"})
    assert response.status_code == 202 and response.json()["new_image"] == NEW
    assert resolver.asked == [OLD]


def test_resolution_failure_is_a_clear_error(client: TestClient, redis: Redis, worker: SimpleWorker,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = FakeResolver(ImageResolutionFailed("No main-<sha> image found for ghcr.io/x/y"))
    monkeypatch.setattr("worker.resolver.ImageResolver.from_settings", lambda settings: resolver)
    publish_inventory(redis, [container("hmm-local")])
    response = client.post("/update", json={})
    assert response.status_code == 422
    assert response.json() == {"success": False, "error": "No main-<sha> image found for ghcr.io/x/y"}
    assert locks.lock_holder(redis, "hmm-local") is None


def test_unknown_job_is_404(client: TestClient) -> None:
    response = client.get("/jobs/nope")
    assert response.status_code == 404 and response.json() == {"success": False, "error": "Job 'nope' not found"}


def test_containers_come_from_the_inventory_and_only_allowed_ones_are_listed(client: TestClient,
                                                                             redis: Redis) -> None:
    assert client.get("/containers").status_code == 503
    publish_inventory(redis, [container("b", labels=ENABLED), container("a", image=NEW, labels=ENABLED),
                              container("hmm-local"), container("private"),
                              container("off", labels={"hmm-updater.enable": "false"})])
    body = client.get("/containers").json()
    assert [(c["name"], c["image"]) for c in body["containers"]] == [("a", NEW), ("b", OLD), ("hmm-local", OLD)]
    assert "labels" not in body["containers"][0]


def test_websocket_replays_history_then_relays_live_lines(client: TestClient, redis: Redis) -> None:
    log = JobLog(redis, echo=False)
    log.publish("job-1", "app", INFO, "first")
    log.publish("job-2", "other", INFO, "elsewhere")
    with client.websocket_connect("/ws/logs?job_id=job-1") as ws:
        replayed = ws.receive_json()
        assert replayed["message"] == "first" and replayed["job_id"] == "job-1"
        assert set(replayed) >= {"timestamp", "time", "level", "message", "job_id", "container_name"}
        log.publish("job-2", "other", INFO, "not for this client")
        log.publish("job-1", "app", "WARNING", "second")
        live = ws.receive_json()
        assert (live["message"], live["level"], live["container_name"]) == ("second", "WARNING", "app")
    with client.websocket_connect("/ws/logs") as ws:
        assert [ws.receive_json()["message"] for _ in range(4)] == [
            "first", "elsewhere", "not for this client", "second"]


def test_metrics_count_requests_and_outcomes(client: TestClient, redis: Redis, worker: SimpleWorker,
                                             perform: list[tuple[str, str | None]]) -> None:
    publish_inventory(redis, [container("hmm-local")])
    client.post("/update", json={"new_image": NEW})
    run_jobs(redis)
    text = client.get("/metrics").text
    assert 'hmm_updater_http_requests_total{method="POST",route="/update",status="202"} 1.0' in text
    assert 'hmm_updater_jobs_total{outcome="updated"} 1.0' in text
    assert "hmm_updater_update_duration_seconds_count 1.0" in text
    assert "hmm_updater_workers 1.0" in text


def test_index_serves_the_ui_or_a_placeholder(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert client.get("/static/__init__.py").status_code == 404
    assert client.get("/static/../api/main.py").status_code == 404


def test_lock_is_released_only_by_its_holder(redis: Redis) -> None:
    assert locks.confirm_lock(redis, "app", "job-a", 60) == "job-a"
    assert locks.confirm_lock(redis, "app", "job-b", 60) == "job-a"
    assert locks.release_lock(redis, "app", "job-b") is False
    assert locks.lock_holder(redis, "app") == "job-a"
    assert locks.release_lock(redis, "app", "job-a") is True
    assert locks.lock_holder(redis, "app") is None


def test_importing_the_api_does_not_import_docker() -> None:
    code = "import sys, api.main; assert not [m for m in sys.modules if m.split('.')[0] == 'docker'], 'docker'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_job_log_keeps_capped_histories(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "LOG_HISTORY_MAX", 3)
    log = JobLog(redis, echo=False)
    for n in range(5):
        log.publish("j", "app", INFO, f"line {n}")
    assert [e["message"] for e in log.history()] == ["line 2", "line 3", "line 4"]
    assert len(log.history("j", limit=100)) == 5
    assert [e["message"] for e in log.history("j", limit=2)] == ["line 3", "line 4"]
    assert time.time() > 0
