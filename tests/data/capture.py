"""Capture real `docker inspect` JSON for tests/test_derive.py; run by hand: `python3 -m tests.data.capture`.

Creates containers the way users do (docker CLI, docker-compose) on the local engine, saves
`inspect/<case>.container.json` and `inspect/<case>.image.json`, then removes everything it made.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from pathlib import Path

import docker

from tests import testbed

PREFIX = "hmmt-derive-"
OUT = Path(__file__).parent / "inspect"
BIND_DIR = Path("/tmp/hmmt-derive-bind")
APP = f"{PREFIX}app:v1"
ENTRY = f"{PREFIX}entry:v1"

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: {image}
    restart: unless-stopped
    environment:
      SHARED: from-compose
    labels:
      app.role: web
    ports:
      - "127.0.0.1::8080"
"""

# case -> arguments of `docker run` (or `docker create` where starting would touch the host).
CASES: dict[str, list[str]] = {
    "plain": [
        "-it", "-e", "SHARED=user", "-e", "EXTRA=1", "--label", "app.version=user", "--label", "owner=me",
        "--user", "0:0", "--workdir", "/tmp", "--health-interval", "5s", "--health-retries", "7",
        "--hostname", "plain-host", "--domainname", "example.test", "--stop-signal", "SIGINT",
        "--stop-timeout", "7", APP, "/bin/app", "--verbose",
    ],
    "volumes": [
        "-v", "/extra", "-v", f"{PREFIX}named:/named", "-v", f"{BIND_DIR}:/bind:ro",
        "--tmpfs", "/scratch:size=1m",
        "--mount", "type=volume,target=/mnt-anon",
        "--mount", f"type=volume,source={PREFIX}named2,target=/mnt-named,readonly",
        "--mount", f"type=bind,source={BIND_DIR},target=/mnt-bind",
        "--mount", "type=tmpfs,target=/mnt-tmp", APP,
    ],
    "volumes-from": ["--volumes-from", f"{PREFIX}plain:ro", APP],
    "ports": ["-p", "127.0.0.1:{port}:8080", "-p", "127.0.0.1::9999/udp", "--expose", "7000", APP],
    "static": [
        "--network", f"{PREFIX}static", "--ip", "10.231.0.10", "--ip6", "fd00:231::10",
        "--link-local-ip", "169.254.231.10", "--network-alias", "static-alias", APP,
    ],
    "aliases": [
        "--network", f"{PREFIX}dynamic", "--network-alias", "web", "--network-alias", "www",
        "--link", f"{PREFIX}ports:portsalias", APP,
    ],
    "host": ["--network", "host", APP],
    "dependant": ["--network", f"container:{PREFIX}static", "-e", "ROLE=sidecar", APP, "sleep", "600"],
    "tuned": [
        "--init", "--restart", "on-failure:3", "--memory", "64m", "--memory-reservation", "32m",
        "--cpus", "0.5",
        "--pids-limit", "64", "--ulimit", "nofile=1024:2048", "--sysctl", "net.core.somaxconn=512",
        "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--security-opt", "no-new-privileges",
        "--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
        "--dns", "127.0.0.53", "--dns-search", "example.test", "--dns-option", "ndots:2",
        "--add-host", "db.example.test:10.0.0.5", "--shm-size", "16m", "--device", "/dev/null:/dev/xnull",
        "--oom-score-adj", "100", "--no-healthcheck", APP,
    ],
    "entry-cmd": [ENTRY, "--quiet"],
    "entry-override": ["--entrypoint", "/bin/sh", ENTRY, "-c", "exec /bin/app"],
}
NOT_STARTED = {"host"}


def docker_cli(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def build_images(client: docker.DockerClient) -> None:
    base = testbed.build_base_image(client, f"{PREFIX}base:latest")
    testbed.build_app_image(client, base, testbed.APP_VERSIONS["v1"], APP)
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(f'FROM {APP}\nENTRYPOINT ["/bin/app"]\nCMD ["--serve"]\n')
        client.images.build(path=ctx, tag=ENTRY, rm=True, forcerm=True)


def save(case: str, container_id: str) -> None:
    container = json.loads(docker_cli("container", "inspect", container_id))[0]
    image = json.loads(docker_cli("image", "inspect", container["Image"]))[0]
    for kind, body in (("container", container), ("image", image)):
        Path(OUT, f"{case}.{kind}.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def capture(client: docker.DockerClient) -> None:
    BIND_DIR.mkdir(exist_ok=True)
    docker_cli("network", "create", "--subnet", "10.231.0.0/24", "--ipv6", "--subnet", "fd00:231::/64",
               f"{PREFIX}static")
    docker_cli("network", "create", f"{PREFIX}dynamic")
    for case, args in CASES.items():
        verb = "create" if case in NOT_STARTED else "run"
        args = [a.replace("{port}", str(testbed.free_port())) for a in args]
        docker_cli(verb, *([] if verb == "create" else ["-d"]), "--name", PREFIX + case, *args)
    # Docker CLI 28 refuses --mac-address against API 1.41 (it sends it per network); docker-py does not.
    mac = client.api.create_container(
        APP, name=f"{PREFIX}mac", mac_address="02:42:ac:11:00:63",
        host_config=client.api.create_host_config(links={f"{PREFIX}plain": "plainalias"}))
    client.api.start(mac["Id"])
    # Connected after start: the engine then reports IPAMConfig as {} rather than null.
    docker_cli("network", "connect", "--alias", "second", f"{PREFIX}dynamic", f"{PREFIX}static")
    with tempfile.TemporaryDirectory() as project:
        Path(project, "docker-compose.yml").write_text(COMPOSE_FILE.format(image=APP))
        subprocess.run(["docker-compose", "-p", f"{PREFIX}compose", "up", "-d"], cwd=project, check=True)
    for case in [*CASES, "mac"]:
        save(case, PREFIX + case)
    save("compose", f"{PREFIX}compose_web_1")


def main() -> None:
    client = docker.from_env()
    OUT.mkdir(exist_ok=True)
    try:
        build_images(client)
        capture(client)
    finally:
        testbed.remove_prefixed(client, PREFIX)
        for tag in (ENTRY, APP, f"{PREFIX}base:latest"):
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(tag, force=True)
        BIND_DIR.rmdir()
        client.close()


if __name__ == "__main__":
    main()
