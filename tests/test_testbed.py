"""The test bed itself: images really differ between versions and the test app really serves."""

import docker
import httpx
import pytest

from tests import testbed

pytestmark = pytest.mark.docker


def test_versions_declare_different_image_defaults(docker_client: docker.DockerClient,
                                                   images: testbed.TestImages) -> None:
    v1 = docker_client.api.inspect_image(images.ref("v1"))["Config"]
    v2 = docker_client.api.inspect_image(images.ref("v2"))["Config"]
    assert "SHARED=from-v1" in v1["Env"] and "SHARED=from-v2" in v2["Env"]
    assert v1["Labels"]["app.version"] == "1" and v2["Labels"]["app.version"] == "2"
    assert set(v2["Volumes"]) == {"/data", "/cache"} and set(v1["Volumes"]) == {"/data"}
    assert v1["Healthcheck"] != v2["Healthcheck"]
    assert v1["WorkingDir"] != v2["WorkingDir"]


def test_app_serves_its_version_on_a_loopback_port(docker_client: docker.DockerClient,
                                                   images: testbed.TestImages,
                                                   docker_names: testbed.Names) -> None:
    port = testbed.free_port()
    docker_client.containers.run(images.ref("v1"), name=docker_names("app"), detach=True,
                                 ports={"8080/tcp": ("127.0.0.1", port)}, labels=docker_names.labels)
    testbed.wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/").text.strip() == "version=1",
                     what="test app")


def test_registry_serves_the_pushed_tags(registry: testbed.Service, images: testbed.TestImages) -> None:
    repo = images.repository.split("/", 1)[1]
    tags = httpx.get(f"http://127.0.0.1:{registry.port}/v2/{repo}/tags/list").json()["tags"]
    assert set(tags) == set(images.tags.values())
