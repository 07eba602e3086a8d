"""The routes the web UI reads besides the service's own: GET /, /static, /config and /images/latest."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import fakeredis
import pytest
from redis import Redis

from api.main import create_app
from api.routes import images
from tests.fakes import FakeResolver
from worker.errors import ImageResolutionFailed
from worker.inventory import ContainerInfo, publish_inventory
from worker.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for the `httpx2` fork; httpx works the same here
    from fastapi.testclient import TestClient

OLD = "ghcr.io/renegadeuk/hmm-local:main-1111111"
NEW = "ghcr.io/renegadeuk/hmm-local:main-2222222"


def container(name: str, image: str) -> ContainerInfo:
    return ContainerInfo(name=name, id="c" * 64, image=image, image_id="sha256:" + "a" * 64, state="running",
                         health=None, created="2026-01-01T00:00:00Z", started_at=None,
                         labels={"hmm-updater.enable": "true"})


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield client
    client.close()


@pytest.fixture
def client(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(images, "resolved", images._ResolvedCache())
    monkeypatch.setattr("api.updates.REFRESH_WAIT_SECONDS", 0.1)
    settings = Settings(redis_url="redis://unused:1/0", target_container="hmm-local")
    app = create_app(settings, redis=redis, async_redis=fakeredis.FakeAsyncRedis())
    with TestClient(app) as test_client:
        yield test_client


def use_resolver(monkeypatch: pytest.MonkeyPatch, answer: str | Exception) -> FakeResolver:
    resolver = FakeResolver(answer)
    monkeypatch.setattr("worker.resolver.ImageResolver.from_settings", lambda settings: resolver)
    return resolver


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Update HMM-Local Container" in page.text
    for name in ("app.css", "app.js", "icon.svg"):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert client.get("/static/..%2F..%2Fapi%2Fmain.py").status_code == 404


def test_config_names_the_target_and_says_whether_a_token_is_needed(client: TestClient) -> None:
    body = client.get("/config").json()
    assert body["target_container"] == "hmm-local"
    assert body["tag_prefix"] == "main-"
    assert body["token_required"] is False


def test_latest_image_is_resolved_once_and_kept(client: TestClient, redis: Redis,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = use_resolver(monkeypatch, NEW)
    publish_inventory(redis, [container("hmm-local", OLD)])

    first = client.get("/images/latest", params={"container": "hmm-local"}).json()
    again = client.get("/images/latest", params={"container": "hmm-local"}).json()

    assert first["latest_image"] == NEW and first["update_available"] is True and first["detail"] is None
    assert again == first
    assert resolver.asked == [OLD]
    client.get("/images/latest", params={"container": "hmm-local", "refresh": "true"})
    assert resolver.asked == [OLD, OLD]


def test_an_up_to_date_container_has_no_update(client: TestClient, redis: Redis,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, NEW)
    publish_inventory(redis, [container("hmm-local", NEW)])
    body = client.get("/images/latest", params={"container": "hmm-local"}).json()
    assert body["latest_image"] == NEW and body["update_available"] is False


def test_an_image_not_tagged_main_sha_is_not_resolved(client: TestClient, redis: Redis,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = use_resolver(monkeypatch, NEW)
    publish_inventory(redis, [container("cache", "redis:7")])
    body = client.get("/images/latest", params={"container": "cache"}).json()
    assert body["latest_image"] is None and body["update_available"] is False
    assert body["detail"] == "redis:7 is not a main-<sha> image"
    assert resolver.asked == []


def test_a_resolution_failure_is_reported_not_raised(client: TestClient, redis: Redis,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, ImageResolutionFailed("None of the last 30 commits has an image"))
    publish_inventory(redis, [container("hmm-local", OLD)])
    response = client.get("/images/latest", params={"container": "hmm-local"})
    assert response.status_code == 200
    assert response.json()["latest_image"] is None
    assert response.json()["detail"] == "None of the last 30 commits has an image"


def test_unknown_container_and_missing_inventory(client: TestClient, redis: Redis) -> None:
    assert client.get("/images/latest", params={"container": "hmm-local"}).status_code == 503
    publish_inventory(redis, [container("hmm-local", OLD)])
    missing = client.get("/images/latest", params={"container": "ghost"})
    assert missing.status_code == 404 and missing.json() == {"success": False, "error": "Container 'ghost' not found"}
    assert client.get("/images/latest", params={"container": "-bad"}).status_code == 400
