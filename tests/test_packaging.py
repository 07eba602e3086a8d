"""The image and the compose stack as users run them: build, start, update a sibling through the containerised API."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml

from tests import testbed

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = "hmm-updater-base:bookworm"
DOCKER_SOCKET = "/var/run/docker.sock"
TOKEN = "packaging-test-token"
# Settings the user's shell might hold; the stack under test must not see them.
FOREIGN_PREFIXES = ("UPDATER_", "REDIS_", "RQ_DASHBOARD_", "GITHUB_", "DOCKER_GID", "TARGET_CONTAINER")


def compose_config(empty_env_file: Path, *files: str) -> dict[str, Any]:
    """What docker-compose makes of the shipped files with every setting at its default."""
    empty_env_file.write_text("")  # a developer's own .env must not count
    command = ["docker-compose", "--project-directory", str(REPO), "--env-file", str(empty_env_file)]
    command += [arg for f in files for arg in ("-f", str(REPO / f))]
    done = subprocess.run([*command, "--profile", "example", "config"], env=hermetic_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_by_default_only_the_worker_holds_the_socket_and_the_dashboard_stays_local(tmp_path: Path) -> None:
    services = compose_config(tmp_path / "empty.env", "docker-compose.yml")["services"]

    with_socket = {name for name, s in services.items()
                   if any(DOCKER_SOCKET in str(v) for v in s.get("volumes", []))}
    assert with_socket == {"worker"}
    assert services["api"]["ports"] == [{"published": 8081, "target": 8081}]
    assert services["rq-dashboard"]["ports"] == ["127.0.0.1:9181:9181/tcp"]
    single = compose_config(tmp_path / "empty.env", "docker-compose.single.yml")["services"]["updater"]
    assert single["environment"]["REDIS_URL"] is None  # unset: `run` starts its private Redis


@dataclass
class BuiltImages:
    updater: str
    dashboard: str
    redis: str  # our image with Debian's redis-server as its command: Docker Hub's redis is out of reach


def hermetic_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    return env | settings


def docker_build(tag: str, *args: str, dockerfile: str | None = None) -> None:
    command = ["docker", "build", "--network", "host", "-t", tag, *args]
    command += ["-"] if dockerfile else [str(REPO)]
    done = subprocess.run(command, input=dockerfile, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"docker build {tag} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def built(docker_client: docker.DockerClient, run_id: str) -> Iterator[BuiltImages]:
    subprocess.run(["bash", str(REPO / "scripts/build-base-image.sh")], check=True, timeout=900)
    built = BuiltImages(f"hmmt-{run_id}-updater:test", f"hmmt-{run_id}-dashboard:test",
                        f"hmmt-{run_id}-redis:test")
    base = ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    docker_build(built.updater, *base, "--target", "updater")
    docker_build(built.dashboard, *base, "--target", "dashboard")
    docker_build(built.redis, dockerfile=f"FROM {built.updater}\nUSER root\nENTRYPOINT []\nHEALTHCHECK NONE\n")
    yield built
    # The base image stays: it is the slow part and scripts/build-base-image.sh reuses it.
    for tag in (built.redis, built.dashboard, built.updater):
        docker_client.images.remove(tag, force=True)


@dataclass
class ComposeStack:
    project: str
    env: dict[str, str]
    env_file: Path  # empty: a developer's own .env must not leak in
    api_port: int
    dashboard_port: int
    app_port: int
    app_name: str

    def compose(self, *args: str, check: bool = True) -> str:
        command = ["docker-compose", "-p", self.project, "-f", str(REPO / "docker-compose.yml"),
                   "--env-file", str(self.env_file), "--profile", "example", *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300)
        if check:
            assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def container(self, client: docker.DockerClient, service: str) -> Any:
        filters = {"label": [f"com.docker.compose.project={self.project}",
                             f"com.docker.compose.service={service}"]}
        (found,) = client.containers.list(all=True, filters=filters)
        return found


@pytest.fixture
def stack(built: BuiltImages, images: testbed.TestImages, docker_names: testbed.Names,
          tmp_path: Path) -> Iterator[ComposeStack]:
    """The compose file as shipped, on our images, with the example app running test app v1."""
    api_port, dashboard_port, app_port = (testbed.free_port() for _ in range(3))
    env = hermetic_env(
        UPDATER_IMAGE=built.updater, DASHBOARD_IMAGE=built.dashboard, REDIS_IMAGE=built.redis,
        EXAMPLE_IMAGE=images.ref("v1"), TARGET_CONTAINER=docker_names("app"),
        UPDATER_PUBLISH=f"127.0.0.1:{api_port}", DASHBOARD_PUBLISH=f"127.0.0.1:{dashboard_port}",
        EXAMPLE_PUBLISH=f"127.0.0.1:{app_port}", UPDATER_API_TOKEN=TOKEN, UPDATER_SETTLE_SECONDS="1",
        # The hardened worker: unprivileged, with only the socket's group.
        UPDATER_WORKER_USER="10001", DOCKER_GID=str(os.stat(DOCKER_SOCKET).st_gid),
    )
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    stack = ComposeStack(docker_names.prefix, env, env_file, api_port, dashboard_port, app_port,
                         docker_names("app"))
    try:
        stack.compose("up", "-d", "--no-build")
        yield stack
    finally:
        print(stack.compose("logs", "--no-color", "--tail=60", check=False))  # shown when the test fails
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)


def healthy(container: Any) -> bool:
    container.reload()
    return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")


def healthcheck_passes_now(container: Any) -> bool:
    """Run the image's HEALTHCHECK at once rather than wait its 30 s interval."""
    kind, command = container.attrs["Config"]["Healthcheck"]["Test"]
    return kind == "CMD-SHELL" and container.exec_run(["sh", "-c", command]).exit_code == 0


def mounts_socket(container: Any) -> bool:
    return any(m["Destination"] == DOCKER_SOCKET for m in container.attrs["Mounts"])


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.timeout(900)
def test_compose_stack_updates_a_sibling_through_the_containerised_api(
        stack: ComposeStack, docker_client: docker.DockerClient, images: testbed.TestImages) -> None:
    api = f"http://127.0.0.1:{stack.api_port}"
    app = f"http://127.0.0.1:{stack.app_port}/"
    containers = {s: stack.container(docker_client, s) for s in ("redis", "api", "worker", "rq-dashboard")}
    testbed.wait_for(lambda: all(healthy(containers[s]) for s in ("redis", "api", "worker")), timeout=120,
                     what="the redis, api and worker healthchecks")
    testbed.wait_for(lambda: httpx.get(app).text.strip() == "version=1", timeout=60, what="the example app")

    answer = httpx.post(f"{api}/update?wait=true&timeout=180", timeout=200,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                        json={"container_name": stack.app_name, "new_image": images.ref("v2")})

    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert httpx.get(app).text.strip() == "version=2"
    assert docker_client.api.inspect_container(stack.app_name)["Config"]["Image"] == images.ref("v2")
    assert {s for s, c in containers.items() if mounts_socket(c)} == {"worker"}
    assert containers["api"].attrs["Config"]["User"] == "updater"
    assert containers["worker"].exec_run("id -u").output.decode().strip() == "10001"
    assert healthcheck_passes_now(containers["rq-dashboard"])
    dashboard = f"http://127.0.0.1:{stack.dashboard_port}/0/data/jobs/hmm-updater/finished/10/asc/1.json"
    assert [job["id"] for job in httpx.get(dashboard, timeout=10).json()["jobs"]] == [answer.json()["job_id"]]


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.timeout(900)
def test_single_container_run_updates_a_sibling(
        built: BuiltImages, docker_client: docker.DockerClient, images: testbed.TestImages,
        docker_names: testbed.Names) -> None:
    app_port, api_port = testbed.free_port(), testbed.free_port()
    app = f"http://127.0.0.1:{app_port}/"
    docker_client.containers.run(images.ref("v1"), name=docker_names("app"), detach=True,
                                 ports={"8080/tcp": ("127.0.0.1", app_port)},
                                 labels={"hmm-updater.enable": "true", **docker_names.labels})
    # docs/deploy.md's command, on loopback and with a short settle time.
    subprocess.run(
        ["docker", "run", "-d", "--name", docker_names("updater"), "--init",
         "-p", f"127.0.0.1:{api_port}:8081",
         "-v", f"{DOCKER_SOCKET}:{DOCKER_SOCKET}", "--group-add", str(os.stat(DOCKER_SOCKET).st_gid),
         "-v", f"{docker_names('state')}:/var/lib/hmm-updater",
         "-e", f"UPDATER_API_TOKEN={TOKEN}", "-e", "UPDATER_SETTLE_SECONDS=1",
         "--label", f"hmmtest.run={docker_names.run_id}",
         built.updater, "run"],
        check=True, capture_output=True, timeout=60,
    )
    api = f"http://127.0.0.1:{api_port}"
    testbed.wait_for(lambda: httpx.get(f"{api}/health").status_code == 200, timeout=90,
                     what="`hmm-updater run` to report healthy")
    testbed.wait_for(lambda: httpx.get(app).text.strip() == "version=1", timeout=30, what="the sibling")

    answer = httpx.post(f"{api}/update?wait=true&timeout=180", timeout=200,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                        json={"container_name": docker_names("app"), "new_image": images.ref("v2")})

    assert answer.status_code == 200, answer.text + docker_client.containers.get(
        docker_names("updater")).logs(tail=40).decode(errors="replace")
    assert httpx.get(app).text.strip() == "version=2"
    updater = docker_client.containers.get(docker_names("updater"))
    assert updater.attrs["Config"]["User"] == "updater"
    assert healthcheck_passes_now(updater)
