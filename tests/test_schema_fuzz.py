"""Schemathesis against /openapi.json, in process: no input makes the API answer 5xx or break its own schema."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import fakeredis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rq import SimpleWorker
from rq.job import JobStatus
from schemathesis import checks

from api import updates
from api.main import create_app
from api.routes import images
from worker import keys
from worker.inventory import ContainerInfo, publish_inventory
from worker.settings import Settings

TOKEN = "fuzz-token"
IN_CI = os.environ.get("CI") == "true"  # the same examples on every CI run; new ones on every local run
OLD = "ghcr.io/renegadeuk/hmm-local:main-1111111"


class FakeResolver:
    def latest(self, current_image: str) -> str:
        return current_image.rsplit(":", 1)[0] + ":main-2222222"

    def close(self) -> None:
        pass


def container(name: str, image: str = OLD) -> ContainerInfo:
    return ContainerInfo(name=name, id="c" * 64, image=image, image_id="sha256:" + "a" * 64, state="running",
                         health=None, created="2026-01-01T00:00:00Z", started_at=None,
                         labels={"hmm-updater.enable": "true"})


@pytest.fixture
def api_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[schemathesis.BaseSchema]:
    """The app on fakeredis with a registered (idle) worker, an inventory, no GitHub and no waiting."""
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    SimpleWorker([keys.QUEUE_NAME], connection=redis).register_birth()  # type: ignore[no-untyped-call]
    publish_inventory(redis, [container("hmm-local"), container("cache", "redis:7")])
    monkeypatch.setattr("worker.resolver.ImageResolver.from_settings", lambda settings: FakeResolver())
    monkeypatch.setattr(updates, "REFRESH_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(updates, "wait_until_done", lambda job, timeout: JobStatus.QUEUED)
    monkeypatch.setattr(images, "resolved", images._ResolvedCache())
    app = create_app(Settings(redis_url="redis://unused:1/0", updater_api_token=TOKEN),  # type: ignore[arg-type]
                     redis=redis, async_redis=fakeredis.FakeAsyncRedis())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    redis.close()


schema = schemathesis.pytest.from_fixture("api_schema")
# What the answers must do. Left out: negative_data_rejection (unknown query parameters are ignored, as
# FastAPI does), missing_required_header (the token is sent on purpose; ignored_auth covers leaving it out)
# and positive_data_acceptance (the documented reference pattern is docker's grammar, which is looser than
# docker's parser: `a.b_c/d` fits the grammar, but docker reads `a.b_c` as a registry host and refuses it).
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance, checks.unsupported_method,
          checks.ignored_auth]


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=IN_CI)
def test_no_input_breaks_the_api(case: schemathesis.Case) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's test client asks for the `httpx2` fork
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=IN_CI)
def test_without_the_token_every_protected_answer_is_401(case: schemathesis.Case) -> None:
    if case.method.upper() != case.operation.method.upper():
        return  # methods the route does not have: 405 before any check, like any other client gets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = case.call()
    if case.path in ("/health", "/config"):
        assert response.status_code in (200, 503)
    elif case.method.upper() == "POST" and response.status_code in (400, 413, 415):
        # FastAPI parses the body before any dependency runs, so a body that is not JSON at all is refused
        # as such first; the answer tells nothing but that.
        assert response.json()["success"] is False
        error = response.json()["error"]
        assert response.status_code != 400 or "JSON decode error" in error or "error parsing the body" in error
    else:
        assert response.status_code == 401, (case.method, case.path, response.text)
        assert response.json()["success"] is False
