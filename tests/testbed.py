"""Real parts for tests and benchmarks: a private Redis, a private registry, busybox test images."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx

BUSYBOX = Path("/bin/busybox")

APP_SCRIPT = """#!/bin/sh
# Test app: serves its version on :8080, writes a boot marker into /data, exits on TERM/INT.
trap 'exit 0' TERM INT
mkdir -p /www /data
echo "version=$APP_VERSION" > /www/index.html
echo "$APP_VERSION" >> /data/boots
httpd -f -p 8080 -h /www &
wait
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(port: int | None = None, workdir: Path | None = None) -> Service:
    port = port or free_port()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="hmmt-redis-"))
    workdir.mkdir(parents=True, exist_ok=True)  # a restart on the same folder, removed by stop()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    wait_for(client.ping, what="redis-server")
    client.close()
    return Service(proc, port, workdir)


def start_registry() -> Service:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="hmmt-registry-"))
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 200, what="docker-registry")
    return Service(proc, port, workdir)


@dataclass(frozen=True)
class AppVersion:
    """One version of the test app: what its image declares."""

    version: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ("/data",)
    expose: tuple[str, ...] = ("8080",)
    workdir: str = "/srv"
    healthcheck: str | None = None
    cmd: str = '["/bin/app"]'
    stopsignal: str | None = None

    def dockerfile(self, base: str) -> str:
        lines = [f"FROM {base}", "COPY app /bin/app", f"ENV APP_VERSION={self.version}"]
        lines += [f"ENV {k}={v}" for k, v in self.env.items()]
        lines += [f'LABEL {k}="{v}"' for k, v in self.labels.items()]
        lines += [f"VOLUME {json.dumps(list(self.volumes))}"] if self.volumes else []
        lines += [f"EXPOSE {' '.join(self.expose)}"] if self.expose else []
        lines += [f"WORKDIR {self.workdir}"]
        if self.healthcheck:
            lines += [f"HEALTHCHECK {self.healthcheck}"]
        if self.stopsignal:
            lines += [f"STOPSIGNAL {self.stopsignal}"]
        lines += [f"CMD {self.cmd}"]
        return "\n".join(lines) + "\n"


HEALTHY = "--interval=1s --timeout=2s --start-period=1s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:8080/"

# Versions differ in every image-level default the updater must not carry over.
APP_VERSIONS = {
    "v1": AppVersion("1", env={"SHARED": "from-v1", "ONLY_V1": "yes"}, labels={"app.version": "1", "app.v1": "x"},
                     workdir="/srv/v1", healthcheck=HEALTHY),
    "v2": AppVersion("2", env={"SHARED": "from-v2"}, labels={"app.version": "2"}, volumes=("/data", "/cache"),
                     expose=("8080", "9090"), workdir="/srv/v2",
                     healthcheck=HEALTHY.replace("--retries=2", "--retries=3")),
    "v3": AppVersion("3", env={"SHARED": "from-v3"}, labels={"app.version": "3"}, workdir="/srv/v3"),
    "broken": AppVersion("broken", cmd='["sh", "-c", "echo broken; exit 3"]'),
    "unhealthy": AppVersion("unhealthy", healthcheck="--interval=1s --timeout=1s --retries=1 CMD false"),
}


@dataclass
class TestImages:
    run_id: str
    registry: str  # 127.0.0.1:PORT
    repository: str  # 127.0.0.1:PORT/hmmt-RUN/app
    base: str
    tags: dict[str, str]  # version key -> main-<sha7>

    def ref(self, key: str) -> str:
        return f"{self.repository}:{self.tags[key]}"


def build_base_image(client: docker.DockerClient, tag: str) -> str:
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy(BUSYBOX, Path(ctx, "busybox"))
        Path(ctx, "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCMD ["sh"]\n'
        )
        client.images.build(path=ctx, tag=tag, rm=True, forcerm=True)
    return tag


def build_app_image(client: docker.DockerClient, base: str, version: AppVersion, tag: str,
                    padding_mb: int = 0) -> None:
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "app").write_text(APP_SCRIPT)
        Path(ctx, "app").chmod(0o755)
        dockerfile = version.dockerfile(base)
        if padding_mb:
            Path(ctx, "padding").write_bytes(os.urandom(padding_mb * 1024 * 1024))
            dockerfile = dockerfile.replace("COPY app /bin/app", "COPY app /bin/app\nCOPY padding /padding")
        Path(ctx, "Dockerfile").write_text(dockerfile)
        client.images.build(path=ctx, tag=tag, rm=True, forcerm=True, labels={"hmmtest": "1"})


def push(client: docker.DockerClient, ref: str) -> None:
    repo, tag = ref.rsplit(":", 1)
    for line in client.api.push(repo, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push {ref}: {line['error']}")


def sha7() -> str:
    return secrets.token_hex(4)[:7]


def build_test_images(client: docker.DockerClient, registry: str, run_id: str) -> TestImages:
    base = build_base_image(client, f"hmmt-{run_id}-base:latest")
    repository = f"{registry}/hmmt-{run_id}/app"
    tags = {key: f"main-{sha7()}" for key in APP_VERSIONS}
    images = TestImages(run_id, registry, repository, base, tags)
    for key, version in APP_VERSIONS.items():
        build_app_image(client, base, version, images.ref(key))
        push(client, images.ref(key))
    return images


def remove_run_resources(client: docker.DockerClient, run_id: str) -> None:
    """Remove every container, network, volume and image a test run created (by label or name)."""
    remove_prefixed(client, f"hmmt-{run_id}", label=f"hmmtest.run={run_id}")
    for image in client.images.list():
        for tag in image.tags:
            if f"hmmt-{run_id}" in tag:
                client.images.remove(tag, force=True, noprune=False)


def remove_prefixed(client: docker.DockerClient, prefix: str, label: str | None = None) -> None:
    """Remove containers, networks and volumes whose name starts with prefix (or that carry label)."""
    containers = {c.id: c for c in client.containers.list(all=True, filters={"name": prefix})
                  if c.name.startswith(prefix)}
    if label:
        containers |= {c.id: c for c in client.containers.list(all=True, filters={"label": label})}
    # Anonymous volumes carried over by an update are mounted by name, so `rm -v` keeps them.
    anonymous = {m["Name"] for c in containers.values() for m in c.attrs.get("Mounts", [])
                 if m.get("Type") == "volume" and len(m.get("Name", "")) == 64}
    for c in containers.values():
        c.remove(force=True, v=True)
    for name in anonymous:
        with suppress(docker.errors.NotFound):
            client.volumes.get(name).remove(force=True)
    for n in client.networks.list(names=[prefix]):
        if n.name.startswith(prefix):
            n.remove()
    for v in client.volumes.list(filters={"name": prefix}):
        if v.name.startswith(prefix):
            v.remove(force=True)


@contextmanager
def private_services() -> Iterator[tuple[Service, Service]]:
    redis_service, registry_service = start_redis(), start_registry()
    try:
        yield redis_service, registry_service
    finally:
        redis_service.stop()
        registry_service.stop()
        shutil.rmtree(redis_service.workdir, ignore_errors=True)
        shutil.rmtree(registry_service.workdir, ignore_errors=True)


class Names:
    """Unique, run-scoped names for what one test creates; labels let teardown find them all."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.prefix = f"hmmt-{run_id}-{secrets.token_hex(2)}"
        # Test containers may be updated whatever their name (see worker/policy.py).
        self.labels = {"hmmtest.run": run_id, "hmm-updater.enable": "true"}

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"
