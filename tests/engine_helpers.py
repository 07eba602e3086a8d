"""Shared steps for tests that create real containers and update them."""

from __future__ import annotations

from typing import Any

import docker
import httpx

from tests import testbed


def run_app(client: docker.DockerClient, image: str, name: str, labels: dict[str, str],
            **kwargs: Any) -> tuple[str, int]:
    """Start the test app with its port published on 127.0.0.1; return (id, port)."""
    port = testbed.free_port()
    container = client.containers.run(image, name=name, detach=True, labels=labels,
                                      ports={"8080/tcp": ("127.0.0.1", port)}, **kwargs)
    testbed.wait_for(lambda: served_version(port) is not None, what=f"{name} serving")
    return str(container.id), port


def served_version(port: int) -> str | None:
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip()
    except httpx.HTTPError:
        return None
    return body.removeprefix("version=") if body.startswith("version=") else None


def inspect(client: docker.DockerClient, name: str) -> dict[str, Any]:
    result: dict[str, Any] = client.api.inspect_container(name)
    return result


def names_with_prefix(client: docker.DockerClient, prefix: str) -> list[str]:
    return sorted(c.name for c in client.containers.list(all=True, filters={"name": prefix})
                  if c.name.startswith(prefix))
