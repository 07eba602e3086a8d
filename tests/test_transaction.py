"""The update transaction on the real engine and registry: success, no-ops, failures and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from tests import testbed
from tests.engine_helpers import inspect, names_with_prefix, run_app, served_version
from worker.docker_engine import DockerEngine
from worker.errors import ContainerNotFound, ImagePullFailed, RollbackFailed, UpdateRefused, UpdateRolledBack
from worker.journal import Journal
from worker.transaction import UpdateOptions, update_container

pytestmark = pytest.mark.docker

FAST = UpdateOptions(settle_seconds=1, health_timeout=30, poll_interval=0.2)


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    def text(self) -> str:
        return "\n".join(f"{level} {message}" for level, message in self.lines)


@pytest.fixture
def engine() -> Any:
    engine = DockerEngine.from_env()
    yield engine
    engine.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal")


def test_update_keeps_user_settings_data_and_static_ip(docker_client: docker.DockerClient,
                                                       images: testbed.TestImages, docker_names: testbed.Names,
                                                       engine: DockerEngine, journal: Journal) -> None:
    net = docker_names("net")
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.231.7.0/24")])
    docker_client.networks.create(net, ipam=ipam, labels=docker_names.labels)
    other = docker_names("net2")
    docker_client.networks.create(other, labels=docker_names.labels)
    volume = docker_names("vol")
    name = docker_names("app")
    docker_client.containers.create(
        images.ref("v1"), name=name, labels={**docker_names.labels, "user.label": "kept"},
        environment={"USER_SETTING": "kept", "SHARED": "user-override"},
        ports={"8080/tcp": ("127.0.0.1", port := testbed.free_port())},
        volumes={volume: {"bind": "/named", "mode": "rw"}}, restart_policy={"Name": "unless-stopped"},
        mem_limit="64m", network=net, hostname="app-host",
    )
    docker_client.api.disconnect_container_from_network(name, net)
    docker_client.api.connect_container_to_network(name, net, ipv4_address="10.231.7.77", aliases=["web"])
    docker_client.api.connect_container_to_network(name, other)
    docker_client.api.start(name)
    testbed.wait_for(lambda: served_version(port) == "1", what="v1 serving")
    before = inspect(docker_client, name)

    sink = Recorder()
    result = update_container(engine, journal, name, images.ref("v2"), FAST, sink)

    after = inspect(docker_client, name)
    assert result.updated and result.container_id == after["Id"] != before["Id"]
    assert served_version(port) == "2"
    env = after["Config"]["Env"]
    assert "USER_SETTING=kept" in env and "SHARED=user-override" in env
    assert "ONLY_V1=yes" not in env, "an env default of the old image was carried over"
    assert after["Config"]["Labels"]["app.version"] == "2" and "app.v1" not in after["Config"]["Labels"]
    assert after["Config"]["Labels"]["user.label"] == "kept"
    assert after["Config"]["WorkingDir"] == "/srv/v2"
    assert after["Config"]["Healthcheck"]["Retries"] == 3
    assert after["Config"]["Hostname"] == "app-host"
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert after["HostConfig"]["Memory"] == 64 * 1024 * 1024
    networks = after["NetworkSettings"]["Networks"]
    assert networks[net]["IPAddress"] == "10.231.7.77" and "web" in networks[net]["Aliases"]
    assert before["Id"][:12] not in (networks[net]["Aliases"] or [])
    assert not (networks[other].get("IPAMConfig") or {}).get("IPv4Address"), "a dynamic IP got pinned"
    data_mount = next(m for m in after["Mounts"] if m["Destination"] == "/data")
    old_data_mount = next(m for m in before["Mounts"] if m["Destination"] == "/data")
    assert data_mount["Name"] == old_data_mount["Name"], "the anonymous volume was not carried over"
    boots = docker_client.containers.get(name).exec_run(["cat", "/data/boots"]).output.decode().split()
    assert boots == ["1", "2"]
    assert names_with_prefix(docker_client, docker_names.prefix) == [name], "a backup or stray is left"
    assert journal.entries() == []
    assert docker_client.volumes.get(old_data_mount["Name"])  # never removed
    assert docker_client.images.get(before["Image"]), "the old image is kept unless cleanup is asked for"
    assert any("Update completed successfully" in m for _, m in sink.lines)


def test_missing_container_fails_and_touches_nothing(engine: DockerEngine, journal: Journal,
                                                     images: testbed.TestImages, docker_names: testbed.Names,
                                                     ) -> None:
    with pytest.raises(ContainerNotFound, match=f"Container '{docker_names('ghost')}' not found"):
        update_container(engine, journal, docker_names("ghost"), images.ref("v2"), FAST, Recorder())
    assert journal.entries() == []


def test_pull_failure_never_stops_the_old_container(docker_client: docker.DockerClient,
                                                    images: testbed.TestImages, docker_names: testbed.Names,
                                                    engine: DockerEngine, journal: Journal) -> None:
    name = docker_names("app")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    started_at = inspect(docker_client, name)["State"]["StartedAt"]

    with pytest.raises(ImagePullFailed, match="main-0000000"):
        update_container(engine, journal, name, f"{images.repository}:main-0000000", FAST, Recorder())

    after = inspect(docker_client, name)
    assert after["Id"] == old_id and after["State"]["Running"] and after["State"]["StartedAt"] == started_at
    assert served_version(port) == "1"
    assert journal.entries() == []


def test_same_image_is_a_no_op_unless_forced(docker_client: docker.DockerClient, images: testbed.TestImages,
                                             docker_names: testbed.Names, engine: DockerEngine,
                                             journal: Journal) -> None:
    name = docker_names("app")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)

    result = update_container(engine, journal, name, images.ref("v1"), FAST, Recorder())
    assert not result.updated and "already up to date" in result.message
    assert inspect(docker_client, name)["Id"] == old_id

    forced = update_container(engine, journal, name, images.ref("v1"),
                              UpdateOptions(settle_seconds=1, force=True, poll_interval=0.2), Recorder())
    assert forced.updated and inspect(docker_client, name)["Id"] == forced.container_id != old_id
    assert served_version(port) == "1"


@pytest.mark.parametrize("version", ["broken", "unhealthy"])
def test_failed_new_container_rolls_back(version: str, docker_client: docker.DockerClient,
                                         images: testbed.TestImages, docker_names: testbed.Names,
                                         engine: DockerEngine, journal: Journal) -> None:
    name = docker_names("app")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels,
                           restart_policy={"Name": "always"})
    sink = Recorder()

    with pytest.raises(UpdateRolledBack, match=f"rolled back to {images.ref('v1')}"):
        update_container(engine, journal, name, images.ref(version), FAST, sink)

    after = inspect(docker_client, name)
    assert after["Id"] == old_id and after["State"]["Running"]
    assert after["HostConfig"]["RestartPolicy"]["Name"] == "always"
    testbed.wait_for(lambda: served_version(port) == "1", what="old app serving again")
    assert names_with_prefix(docker_client, docker_names.prefix) == [name]
    assert journal.entries() == []
    assert "Rolling back" in sink.text()


def test_dependant_sharing_the_network_namespace_is_recreated(docker_client: docker.DockerClient,
                                                              images: testbed.TestImages,
                                                              docker_names: testbed.Names, engine: DockerEngine,
                                                              journal: Journal) -> None:
    name, sidecar = docker_names("app"), docker_names("sidecar")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    docker_client.containers.run(images.base, ["sleep", "3600"], name=sidecar, detach=True, init=True,
                                 network_mode=f"container:{old_id}", labels=docker_names.labels,
                                 environment={"SIDE": "car"})
    old_sidecar = inspect(docker_client, sidecar)["Id"]

    result = update_container(engine, journal, name, images.ref("v2"), FAST, Recorder())

    side = inspect(docker_client, sidecar)
    assert side["Id"] != old_sidecar and side["State"]["Running"]
    assert side["HostConfig"]["NetworkMode"] == f"container:{result.container_id}"
    assert "SIDE=car" in side["Config"]["Env"]
    # The sidecar really shares the new container's network: it reaches the app on its loopback.
    out = docker_client.containers.get(sidecar).exec_run(["wget", "-q", "-O-", "http://127.0.0.1:8080/"])
    assert out.output.decode().strip() == "version=2"
    assert served_version(port) == "2"
    assert names_with_prefix(docker_client, docker_names.prefix) == sorted([name, sidecar])


def test_dependant_is_part_of_the_rollback(docker_client: docker.DockerClient, images: testbed.TestImages,
                                           docker_names: testbed.Names, engine: DockerEngine,
                                           journal: Journal) -> None:
    name, sidecar = docker_names("app"), docker_names("sidecar")
    old_id, port = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    docker_client.containers.run(images.base, ["sleep", "3600"], name=sidecar, detach=True, init=True,
                                 network_mode=f"container:{old_id}", labels=docker_names.labels)
    old_sidecar = inspect(docker_client, sidecar)["Id"]

    with pytest.raises(UpdateRolledBack):
        update_container(engine, journal, name, images.ref("broken"), FAST, Recorder())

    side = inspect(docker_client, sidecar)
    assert side["Id"] == old_sidecar and side["State"]["Running"]
    assert inspect(docker_client, name)["Id"] == old_id
    testbed.wait_for(lambda: served_version(port) == "1", what="old app serving again")
    assert names_with_prefix(docker_client, docker_names.prefix) == sorted([name, sidecar])


def test_refuses_the_updaters_own_container(docker_client: docker.DockerClient, images: testbed.TestImages,
                                            docker_names: testbed.Names, engine: DockerEngine,
                                            journal: Journal) -> None:
    name = docker_names("self")
    own_id, _ = run_app(docker_client, images.ref("v1"), name, docker_names.labels)

    with pytest.raises(UpdateRefused, match="the updater itself runs in it"):
        update_container(engine, journal, name, images.ref("v2"), FAST, Recorder(), self_container_id=own_id)
    assert inspect(docker_client, name)["Id"] == own_id


class FailingRestartEngine(DockerEngine):
    """The real engine, except that starting the old container again fails: a rollback that cannot work."""

    def __init__(self, api: docker.APIClient, old_id: str) -> None:
        super().__init__(api)
        self.old_id = old_id

    def start(self, container_id: str) -> None:
        if container_id == self.old_id:
            raise RuntimeError("injected: cannot start the old container")
        super().start(container_id)


def test_failed_rollback_is_loud_and_keeps_the_backup(docker_client: docker.DockerClient,
                                                      images: testbed.TestImages, docker_names: testbed.Names,
                                                      journal: Journal) -> None:
    name = docker_names("app")
    old_id, _ = run_app(docker_client, images.ref("v1"), name, docker_names.labels)
    engine = FailingRestartEngine(docker.APIClient(timeout=300), old_id)
    sink = Recorder()

    with pytest.raises(RollbackFailed, match="rollback failed"):
        update_container(engine, journal, name, images.ref("broken"), FAST, sink)

    assert "ROLLBACK FAILED" in sink.text()
    old = inspect(docker_client, old_id)
    assert old["Name"].lstrip("/") in (name, f"{name}-hmm-backup")
    assert journal.get(name) is not None, "the journal must stay for `hmm-updater recover`"
    engine.close()


def test_cleanup_removes_the_old_image_only_when_asked(docker_client: docker.DockerClient,
                                                       images: testbed.TestImages, docker_names: testbed.Names,
                                                       engine: DockerEngine, journal: Journal) -> None:
    # An image of this test's own, so removing it cannot disturb the shared test images.
    own = f"{images.repository}:main-{testbed.sha7()}"
    testbed.build_app_image(docker_client, images.base, testbed.AppVersion(f"own-{docker_names.prefix}"), own)
    old_image_id = docker_client.images.get(own).id
    name = docker_names("app")
    run_app(docker_client, own, name, docker_names.labels)

    update_container(engine, journal, name, images.ref("v3"),
                     UpdateOptions(settle_seconds=1, cleanup_images=True, poll_interval=0.2), Recorder())

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(old_image_id)
    assert docker_client.images.get(images.ref("v3"))  # the new one stays, of course
