"""SIGKILL the updater at every step of an update; `hmm-updater recover` must bring the container back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests import testbed
from tests.engine_helpers import inspect, names_with_prefix, run_app, served_version
from tests.fakes import github_commits

pytestmark = pytest.mark.docker

# Steps after which the old version must come back, and those after which the new one is kept.
ROLLBACK_STEPS = ["pulled", "journaled", "stopped", "renamed", "created", "started", "health"]
FORWARD_STEPS = ["healthy"]


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "worker.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"process ended before {needle!r}:\n" + "".join(seen))
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "".join(seen))


@pytest.mark.parametrize("step", ROLLBACK_STEPS + FORWARD_STEPS)
def test_killed_at_step_then_recovered(step: str, tmp_path: Path, docker_client: docker.DockerClient,
                                       images: testbed.TestImages, docker_names: testbed.Names) -> None:
    name = docker_names("app")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels,
                           environment={"USER_SETTING": "kept"}, restart_policy={"Name": "unless-stopped"})
    env = {**os.environ, "UPDATER_STATE_DIR": str(tmp_path), "UPDATER_SETTLE_SECONDS": "1",
           "UPDATER_DEBUG_PAUSE_AT": step}

    with cli("recreate", name, "--image", images.ref("v2"), env=env) as updater:
        wait_for_line(updater, f"PAUSED AT {step}")
        updater.send_signal(signal.SIGKILL)
        updater.wait()

    recovery = subprocess.run([sys.executable, "-m", "worker.cli", "recover"], env=env, text=True,
                              capture_output=True, timeout=120)
    assert recovery.returncode == 0, recovery.stdout + recovery.stderr

    after = inspect(docker_client, name)
    assert after["State"]["Running"]
    assert "USER_SETTING=kept" in after["Config"]["Env"]
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    expected = "2" if step in FORWARD_STEPS else "1"
    testbed.wait_for(lambda: served_version(port) == expected, what=f"version {expected} serving")
    if step not in FORWARD_STEPS:
        assert after["Id"] == old_id
    assert names_with_prefix(docker_client, docker_names.prefix) == [name], "stray container left"
    assert list(tmp_path.glob("*.json")) == []


def test_cli_recreate_prints_the_seed_log_format(tmp_path: Path, docker_client: docker.DockerClient,
                                                 images: testbed.TestImages, docker_names: testbed.Names) -> None:
    name = docker_names("app")
    run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    env = {**os.environ, "UPDATER_STATE_DIR": str(tmp_path), "UPDATER_SETTLE_SECONDS": "1"}

    done = subprocess.run([sys.executable, "-m", "worker.cli", "recreate", name, "--image", images.ref("v3")],
                          env=env, text=True, capture_output=True, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.endswith(" - INFO - ✅ Update completed successfully")
    time.strptime(last.split(" - ")[0], "%Y-%m-%d %H:%M:%S")

    missing = subprocess.run([sys.executable, "-m", "worker.cli", "recreate", docker_names("ghost"),
                              "--image", images.ref("v3")], env=env, text=True, capture_output=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stdout.strip().splitlines() == [missing.stdout.strip().splitlines()[-1]]
    assert f"Container '{docker_names('ghost')}' not found" in missing.stdout


def test_cli_recreate_without_image_resolves_the_newest_main_sha(tmp_path: Path,
                                                                 docker_client: docker.DockerClient,
                                                                 images: testbed.TestImages,
                                                                 docker_names: testbed.Names) -> None:
    name = docker_names("app")
    _, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    sha_of = {key: tag.removeprefix("main-") + "0" * 33 for key, tag in images.tags.items()}
    github = github_commits(["e" * 40, sha_of["v3"], sha_of["v1"]])  # the newest commit has no image yet
    env = {**os.environ, "UPDATER_STATE_DIR": str(tmp_path), "UPDATER_SETTLE_SECONDS": "1",
           "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "o/r"}
    try:
        done = subprocess.run([sys.executable, "-m", "worker.cli", "recreate", name], env=env, text=True,
                              capture_output=True, timeout=180)
    finally:
        github.shutdown()
        github.server_close()

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Newest image: {images.ref('v3')}" in done.stdout
    assert inspect(docker_client, name)["Config"]["Image"] == images.ref("v3")
    assert served_version(port) == "3"
