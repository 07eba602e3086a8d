"""Secrets stay secret: a container's env values, the API token and registry and GitHub credentials appear in
no log, no Redis key, no job record, no API answer and no WebSocket line, even when the app prints them."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from tests import testbed
from tests.engine_helpers import inspect, run_app
from tests.stack import LogCollector, Stack

pytestmark = pytest.mark.docker

# Prints its secret, then serves only as version 1: so the update to v2 fails with that line as the reason.
LEAKY_COMMAND = ["sh", "-c", 'echo "token=$APP_SECRET"; [ "$APP_VERSION" = 1 ] && exec /bin/app; exit 3']


def redis_text(url: str) -> str:
    """Every value in Redis, also decompressed where RQ compresses (job data, exception text)."""
    client = redis.Redis.from_url(url)
    values: list[bytes] = []
    for key in client.scan_iter():
        kind = client.type(key).decode()
        if kind == "string":
            values.append(client.get(key) or b"")
        elif kind == "hash":
            values += client.hgetall(key).values()
        elif kind == "list":
            values += client.lrange(key, 0, -1)
        elif kind == "set":
            values += client.smembers(key)
        elif kind == "zset":
            values += client.zrange(key, 0, -1)
        elif kind == "stream":
            values += [v for _, fields in client.xrange(key) for v in fields.values()]
        values.append(key)
    client.close()
    texts = []
    for value in values:
        texts.append(value.decode(errors="replace"))
        with contextlib.suppress(zlib.error):
            texts.append(zlib.decompress(value).decode(errors="replace"))
    return "\n".join(texts)


@pytest.fixture
def secret_values() -> dict[str, str]:
    return {name: f"{name.lower()}-{secrets.token_hex(12)}" for name in
            ("APP_SECRET", "API_TOKEN", "REGISTRY_PASSWORD", "GITHUB_TOKEN")}


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, images: testbed.TestImages,
          secret_values: dict[str, str]) -> Iterator[Stack]:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    login = base64.b64encode(f"updater:{secret_values['REGISTRY_PASSWORD']}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {images.registry: {"auth": login}}}))
    s = Stack(redis_url, tmp_path, env={"UPDATER_API_TOKEN": secret_values["API_TOKEN"],
                                        "GITHUB_TOKEN": secret_values["GITHUB_TOKEN"],
                                        "DOCKER_CONFIG": str(docker_config)})
    yield s
    s.stop()


def test_no_secret_leaks_from_an_update_or_a_failed_one(stack: Stack, docker_client: docker.DockerClient,
                                                        images: testbed.TestImages, docker_names: testbed.Names,
                                                        secret_values: dict[str, str]) -> None:
    env = {"APP_SECRET": secret_values["APP_SECRET"]}
    good, leaky = docker_names("good"), docker_names("leaky")
    run_app(docker_client, images.ref("v1"), good, docker_names.labels, environment=env)
    run_app(docker_client, images.ref("v1"), leaky, docker_names.labels, environment=env, command=LEAKY_COMMAND)
    stack.start_api()
    stack.start_worker()
    stack.wait_for_workers(1)
    answers: list[str] = []
    with stack.websocket(f"?token={secret_values['API_TOKEN']}") as ws:  # as the web UI passes it
        collector = LogCollector(ws)
        collector.start()
        jobs = []
        for name in (good, leaky):
            accepted = stack.post("/update", {"container_name": name, "new_image": images.ref("v2")})
            assert accepted.status_code == 202, accepted.text
            answers.append(accepted.text)
            jobs.append(stack.wait_for_job(accepted.json()["job_id"]))
        testbed.wait_for(lambda: all(len(collector.of_job(j["id"])) >= len(j["log"]) for j in jobs),
                         what="every line over the WebSocket")

    assert [j["status"] for j in jobs] == ["finished", "failed"]
    assert "exited with code 3: token=***" in jobs[1]["error"], jobs[1]["error"]  # masked, not dropped
    assert f"APP_SECRET={secret_values['APP_SECRET']}" in inspect(docker_client, good)["Config"]["Env"]
    assert inspect(docker_client, leaky)["Config"]["Image"] == images.ref("v1")  # rolled back
    for path in ("/jobs", f"/jobs/{jobs[0]['id']}", f"/jobs/{jobs[1]['id']}", "/containers", "/health",
                 "/config", "/metrics", f"/images/latest?container={good}"):
        answers.append(stack.get(path).text)
    everywhere = {
        "API answers": "\n".join(answers),
        "WebSocket lines": json.dumps(collector.entries),
        "Redis": redis_text(stack.redis_url),
        "API log": stack.log_of("api"),
        "worker log": stack.log_of("worker"),
        "journal": "".join(p.read_text() for p in (stack.workdir / "state").glob("*")
                           if p.is_file()),
    }
    # Where the secrets would show, they show masked.
    assert "token=***" in everywhere["worker log"] and "/ws/logs?token=***" in everywhere["API log"]
    for where, text in everywhere.items():
        for name, value in secret_values.items():
            assert value not in text, f"{name} leaked into the {where}"
