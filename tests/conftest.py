"""Session-wide real parts: a private Redis and registry, the Docker engine, busybox test images."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests import testbed
from tests.stack import Stack


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[testbed.Service]:
    service = testbed.start_redis()
    yield service
    service.stop()


@pytest.fixture
def redis_url(redis_server: testbed.Service) -> Iterator[str]:
    """A real Redis, flushed before and after each test."""
    import redis

    url = f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def registry() -> Iterator[testbed.Service]:
    service = testbed.start_registry()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine not reachable ({exc}); run scripts/testbed.sh")
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient, registry: testbed.Service, run_id: str
           ) -> Iterator[testbed.TestImages]:
    built = testbed.build_test_images(docker_client, f"127.0.0.1:{registry.port}", run_id)
    yield built
    testbed.remove_run_resources(docker_client, run_id)


@pytest.fixture
def names(run_id: str) -> Iterator[testbed.Names]:
    yield testbed.Names(run_id)


@pytest.fixture
def docker_names(names: testbed.Names, docker_client: docker.DockerClient) -> Iterator[testbed.Names]:
    """Names for engine resources; everything starting with the prefix is removed afterwards."""
    yield names
    testbed.remove_prefixed(docker_client, names.prefix)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """API and worker processes on the real Redis; tests start what they need. Stopped afterwards."""
    s = Stack(redis_url, tmp_path)
    yield s
    s.stop()
