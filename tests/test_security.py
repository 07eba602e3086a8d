"""Who may call the API and what may be updated: the token, the Origin check, body rules, the allow-lists."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from rq import Queue, SimpleWorker

from api.main import create_app
from api.security import HideTokens, origin_allowed
from tests.fakes import inventory_entry
from worker import keys
from worker.errors import NotAllowed
from worker.inventory import ContainerInfo, publish_inventory
from worker.joblog import JobLog
from worker.policy import check_container, check_image, container_allowed, image_allowed
from worker.redact import Redactor, redact_url
from worker.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for the `httpx2` fork; httpx works the same here
    from fastapi.testclient import TestClient
    from starlette.testclient import WebSocketDenialResponse

TOKEN = "t0ken-for-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
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
    SimpleWorker([keys.QUEUE_NAME], connection=client).register_birth()  # type: ignore[no-untyped-call]
    publish_inventory(client, [container("hmm-local"), container("labelled", labels=ENABLED),
                               container("private"), container("db", image="postgres:16", labels=ENABLED)])
    yield client
    client.close()


def make_client(server: fakeredis.FakeServer, redis: Redis, **settings: object) -> TestClient:
    app = create_app(Settings(redis_url="redis://unused:1/0", **settings), redis=redis,  # type: ignore[arg-type]
                     async_redis=fakeredis.FakeAsyncRedis(server=server))
    return TestClient(app)


@pytest.fixture
def client(server: fakeredis.FakeServer, redis: Redis) -> Iterator[TestClient]:
    with make_client(server, redis, updater_api_token=TOKEN) as test_client:
        yield test_client


# --- the token ---------------------------------------------------------------------------------------

PROTECTED = [("GET", "/jobs"), ("GET", "/jobs/nope"), ("GET", "/containers"),
             ("GET", "/images/latest?container=hmm-local"), ("GET", "/metrics"), ("POST", "/update")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_protected_routes_need_the_token(client: TestClient, method: str, path: str,
                                         authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.request(method, path, headers=headers, json={"new_image": NEW})
    assert response.status_code == 401
    assert response.json() == {"success": False,
                               "error": "Missing or wrong API token: send the header Authorization: Bearer <token>"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_right_token_opens_them(client: TestClient, redis: Redis) -> None:
    for method, path in PROTECTED[:3] + PROTECTED[4:5]:
        assert client.request(method, path, headers=AUTH).status_code in (200, 404), path
    accepted = client.post("/update", headers=AUTH, json={"new_image": NEW})
    assert accepted.status_code == 202, accepted.text


def test_open_routes_stay_open_and_say_nothing_secret(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert set(health.json()) == {"status", "service", "timestamp", "version", "update_in_progress", "redis",
                                  "workers", "docker"}
    config = client.get("/config").json()
    assert config["token_required"] is True and TOKEN not in str(config)
    assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_without_a_token_everything_is_open_and_the_log_warns(server: fakeredis.FakeServer, redis: Redis,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), make_client(server, redis) as open_client:
        assert open_client.get("/containers").status_code == 200
        assert open_client.get("/config").json()["token_required"] is False
    assert "UPDATER_API_TOKEN is not set" in caplog.text


# --- the WebSocket ----------------------------------------------------------------------------------


def test_websocket_needs_the_token_as_query_or_subprotocol(client: TestClient, redis: Redis) -> None:
    JobLog(redis, echo=False).publish("job", "app", "INFO", "hello")
    for url, protocols in [("/ws/logs", []), ("/ws/logs?token=wrong", []), ("/ws/logs", ["bearer.wrong"])]:
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(url, subprotocols=protocols):
            pass
        assert refused.value.status_code == 401
        assert refused.value.json()["success"] is False and "token" in refused.value.json()["error"]
    with client.websocket_connect(f"/ws/logs?token={TOKEN}") as ws:
        assert ws.receive_json()["message"] == "hello"
    with client.websocket_connect("/ws/logs", subprotocols=["bearer", f"bearer.{TOKEN}"]) as ws:
        assert ws.accepted_subprotocol == "bearer"
        assert ws.receive_json()["message"] == "hello"


def test_websocket_from_another_site_is_refused(client: TestClient) -> None:
    evil = {"Origin": "https://evil.example"}
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(f"/ws/logs?token={TOKEN}",
                                                                                     headers=evil):
        pass
    assert refused.value.status_code == 403 and "Origin not allowed" in refused.value.json()["error"]
    with client.websocket_connect(f"/ws/logs?token={TOKEN}", headers={"Origin": "http://testserver"}):
        pass


@pytest.mark.parametrize(("origin", "host", "allowed", "expected"), [
    (None, "updater:8081", (), True),  # not a browser
    ("http://updater:8081", "updater:8081", (), True),
    ("https://updater.example", "updater.example", (), True),  # behind a TLS proxy
    ("http://updater", "updater:80", (), True),
    ("https://updater.example", "updater.example:443", (), True),
    ("http://updater:8082", "updater:8081", (), False),
    ("http://evil.example", "updater:8081", (), False),
    ("http://updater:8081.evil.example", "updater:8081", (), False),
    ("null", "updater:8081", (), False),  # sandboxed frames, file:// pages
    ("https://dash.example", "updater:8081", ("https://dash.example/",), True),
    ("http://dash.example", "updater:8081", ("https://dash.example",), False),
    ("http://[::1]:8081", "[::1]:8081", (), True),
])
def test_origin_rules(origin: str | None, host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_the_websocket_token_is_masked_in_uvicorn_logs() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", f"/ws/logs?job_id=j&token={TOKEN}&limit=5"), None)
    HideTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /ws/logs?job_id=j&token=***&limit=5" [accepted]'


# --- request bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
def test_post_needs_a_json_content_type(client: TestClient, content_type: str | None) -> None:
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/update", content=b'{"new_image": "x"}', headers=headers)
    assert response.status_code == 415
    assert response.json()["success"] is False and "application/json" in response.json()["error"]


def test_json_with_a_charset_is_fine(client: TestClient) -> None:
    response = client.post("/update", content=f'{{"new_image": "{NEW}"}}'.encode(),
                           headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 202


def test_a_large_body_is_413(client: TestClient) -> None:
    body = b'{"new_image": "' + b"a" * 70_000 + b'"}'
    response = client.post("/update", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["success"] is False

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"new_image": "'
        for _ in range(20):
            yield b"a" * 8192
        yield b'"}'

    streamed = client.post("/update", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["success"] is False


def test_no_cors_headers_are_sent(client: TestClient) -> None:
    preflight = client.options("/update", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    answer = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


# --- the allow-lists, through the API -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "image", "status", "fragment"), [
    ("hmm-local", NEW, 202, None),  # TARGET_CONTAINER
    ("labelled", NEW, 202, None),  # hmm-updater.enable=true
    ("private", NEW, 403, "Container 'private' may not be updated"),
    ("hmm-local", "ghcr.io/evil/miner:latest", 403, "is not allowed for 'hmm-local'"),
    ("hmm-local", "renegadeuk/hmm-local:main-2222222", 403, "is not allowed"),  # Docker Hub, not ghcr.io
    ("db", "postgres:17", 202, None),  # docker.io/library/postgres either way
])
def test_update_allow_lists(client: TestClient, redis: Redis, name: str, image: str, status: int,
                            fragment: str | None) -> None:
    response = client.post("/update", headers=AUTH, json={"container_name": name, "new_image": image})
    assert response.status_code == status, response.text
    if fragment:
        assert response.json()["success"] is False and fragment in response.json()["error"]
        assert Queue(keys.QUEUE_NAME, connection=redis).count == 0


def test_allowed_names_and_image_patterns_come_from_settings(server: fakeredis.FakeServer, redis: Redis) -> None:
    with make_client(server, redis, updater_allowed_containers=("private",),
                     updater_allowed_images=("ghcr.io/trusted/*",)) as c:
        assert c.post("/update", json={"container_name": "hmm-local", "new_image": NEW}).status_code == 403
        assert c.post("/update", json={"container_name": "private", "new_image": NEW}).status_code == 202
        assert c.post("/update", json={"container_name": "labelled",
                                       "new_image": "ghcr.io/trusted/app:1"}).status_code == 202
        assert [x["name"] for x in c.get("/containers").json()["containers"]] == ["db", "labelled", "private"]


def test_images_latest_refuses_a_container_that_may_not_be_updated(client: TestClient) -> None:
    response = client.get("/images/latest", params={"container": "private"}, headers=AUTH)
    assert response.status_code == 403 and "may not be updated" in response.json()["error"]


# --- the allow-lists and redaction, as functions ------------------------------------------------------


def test_container_policy() -> None:
    settings = Settings(target_container="app")
    assert container_allowed("app", {}, settings) and container_allowed("dgb-local-stack", None, settings)
    assert container_allowed("x", {"hmm-updater.enable": "True"}, settings)
    assert not container_allowed("x", {"hmm-updater.enable": "yes please"}, settings)
    assert not container_allowed("app-hmm-backup", {}, settings)
    with pytest.raises(NotAllowed, match="UPDATER_ALLOWED_CONTAINERS"):
        check_container("x", {}, settings)
    only = Settings(target_container="app", updater_allowed_containers="x, y")  # type: ignore[arg-type]
    assert container_allowed("y", {}, only) and not container_allowed("app", {}, only)


repositories = st.sampled_from(["ghcr.io/a/app", "docker.io/library/redis", "127.0.0.1:5000/x/y", "ubuntu"])
tags = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)


@given(repositories, tags, tags)
def test_any_tag_of_the_same_repository_is_allowed(repository: str, old_tag: str, new_tag: str) -> None:
    assert image_allowed(f"{repository}:{old_tag}", f"{repository}:{new_tag}", ())


@given(repositories, repositories, tags)
def test_another_repository_needs_a_pattern(current: str, other: str, tag: str) -> None:
    from worker.reference import same_repository

    allowed = image_allowed(f"{current}:1", f"{other}:{tag}", ())
    assert allowed == same_repository(current, other)
    assert image_allowed(f"{current}:1", f"{other}:{tag}", (f"{other}:*",))
    assert image_allowed(f"{current}:1", f"{other}:{tag}", (other,))


def test_image_policy_edges() -> None:
    assert not image_allowed("sha256:" + "a" * 64, "ghcr.io/a/b:1", ())
    assert not image_allowed("a" * 64, "ghcr.io/a/b:1", ())  # the container runs a bare image id
    assert not image_allowed("ghcr.io/a/b:1", "not a reference", ("*",))
    assert image_allowed("ghcr.io/a/b:1", "redis:7.2", ("redis:7*",))
    assert image_allowed("ghcr.io/a/b:1", "redis:7.2", ("docker.io/library/redis:7*",))
    assert not image_allowed("ghcr.io/a/b:1", "redis:8", ("redis:7*",))
    with pytest.raises(NotAllowed, match="matches no UPDATER_ALLOWED_IMAGES pattern"):
        check_image("app", "ghcr.io/a/b:1", "ghcr.io/a/c:1", Settings())


def test_redactor_masks_env_values_but_not_public_names() -> None:
    inspect = {"Config": {"Env": ["DB_PASSWORD=hunter2-very-secret", "NAME=my-app", "PORT=8080",
                                  "IMAGE=ghcr.io/a/b:1", "EMPTY="]}}
    redact = Redactor.for_container(inspect, ["my-app", "ghcr.io/a/b:1"])
    assert redact("login failed for hunter2-very-secret on my-app:8080") == "login failed for *** on my-app:8080"
    lines: list[str] = []
    redact.sink(lambda level, message: lines.append(message))("INFO", "pw=hunter2-very-secret")
    assert lines == ["pw=***"]


def test_redis_url_passwords_are_masked() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("rediss://user:s3cret@redis:6379/0") == "rediss://user:***@redis:6379/0"
    assert redact_url("redis://redis:6379/0") == "redis://redis:6379/0"
