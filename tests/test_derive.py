"""derive_create_config on `docker inspect` JSON captured from engine 20.10 (tests/data/capture.py),
and once end to end: recreate a v1 container on v2 and compare what the engine reports."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import docker
import pytest

from tests import testbed
from worker.derive import (
    CONFIG_KEYS,
    CONTAINER_MODE_CONFLICTS,
    CreatePlan,
    NetworkAttachment,
    derive_create_config,
)
from worker.errors import InvalidRequest

INSPECT = Path(__file__).parent / "data" / "inspect"
CASES = sorted(path.name.removesuffix(".container.json") for path in INSPECT.glob("*.container.json"))
NEW_IMAGE = "127.0.0.1:5000/app:main-2222222"


def load(case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    container = json.loads((INSPECT / f"{case}.container.json").read_text())
    image = json.loads((INSPECT / f"{case}.image.json").read_text())
    return container, image


def derive(case: str, **kwargs: Any) -> CreatePlan:
    container, image = load(case)
    return derive_create_config(container, image, NEW_IMAGE, **kwargs)


def anonymous_volume_at(container: dict[str, Any], destination: str) -> str:
    return next(m["Name"] for m in container["Mounts"] if m["Destination"] == destination)


def test_user_overrides_are_kept_and_old_image_defaults_dropped() -> None:
    config = derive("plain").config

    assert config["Image"] == NEW_IMAGE
    assert config["Env"] == ["SHARED=user", "EXTRA=1"]  # PATH, APP_VERSION, ONLY_V1 came from v1
    assert config["Labels"] == {"app.version": "user", "owner": "me"}  # app.v1=x, hmmtest=1 came from v1
    assert config["Cmd"] == ["/bin/app", "--verbose"]
    assert (config["User"], config["WorkingDir"]) == ("0:0", "/tmp")
    assert (config["Hostname"], config["Domainname"]) == ("plain-host", "example.test")
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGINT", 7)
    assert (config["Tty"], config["OpenStdin"]) == (True, True)
    assert "Volumes" not in config and "ExposedPorts" not in config and "Entrypoint" not in config


def test_healthcheck_keeps_only_the_fields_the_user_set() -> None:
    assert derive("plain").config["Healthcheck"] == {"Interval": 5_000_000_000, "Retries": 7}
    assert derive("tuned").config["Healthcheck"] == {"Test": ["NONE"]}  # --no-healthcheck
    assert "Healthcheck" not in derive("aliases").config


def test_untouched_container_leaves_every_default_to_the_new_image() -> None:
    container, _ = load("aliases")
    config = derive("aliases").config

    assert container["Config"]["Hostname"] == container["Id"][:12]
    user_fields = set(config) - {"Image", "HostConfig", "NetworkingConfig"}
    assert user_fields == {"AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
                           "Domainname"}


def test_without_the_old_image_everything_counts_as_user_set() -> None:
    container, _ = load("plain")
    config = derive_create_config(container, None, NEW_IMAGE).config

    assert config["Env"] == container["Config"]["Env"]
    assert config["Labels"] == container["Config"]["Labels"]
    assert config["WorkingDir"] == "/tmp" and config["Volumes"] == {"/data": {}}
    assert config["Healthcheck"] == container["Config"]["Healthcheck"]


def test_entrypoint_and_cmd_follow_who_set_them() -> None:
    cmd_only = derive("entry-cmd").config
    assert "Entrypoint" not in cmd_only and cmd_only["Cmd"] == ["--quiet"]

    overridden = derive("entry-override").config
    assert overridden["Entrypoint"] == ["/bin/sh"] and overridden["Cmd"] == ["-c", "exec /bin/app"]

    # With a user entrypoint the engine does not merge the image's Cmd, so an equal Cmd was typed.
    container, image = load("entry-override")
    container["Config"]["Cmd"] = image["Config"]["Cmd"]
    assert derive_create_config(container, image, NEW_IMAGE).config["Cmd"] == ["--serve"]

    assert "Cmd" not in derive("aliases").config and "Entrypoint" not in derive("aliases").config


@pytest.mark.parametrize("case", CASES)
def test_host_config_is_copied_whole(case: str) -> None:
    container, _ = load(case)
    host_config = derive(case).config["HostConfig"]

    rewritten = {"ContainerIDFile", "Binds", "Mounts", "Links", *CONTAINER_MODE_CONFLICTS}
    assert {k: v for k, v in host_config.items() if k not in rewritten} == \
           {k: v for k, v in container["HostConfig"].items() if k not in rewritten}
    assert "ContainerIDFile" not in host_config


def test_limits_logging_dns_and_security_are_kept() -> None:
    host_config = derive("tuned").config["HostConfig"]

    assert host_config["RestartPolicy"] == {"MaximumRetryCount": 3, "Name": "on-failure"}
    assert (host_config["Memory"], host_config["NanoCpus"]) == (64 << 20, 500_000_000)
    assert host_config["PidsLimit"] == 64
    assert host_config["Ulimits"] == [{"Hard": 2048, "Name": "nofile", "Soft": 1024}]
    assert host_config["Sysctls"] == {"net.core.somaxconn": "512"}
    assert (host_config["CapAdd"], host_config["CapDrop"]) == (["CAP_NET_ADMIN"], ["CAP_MKNOD"])
    assert host_config["SecurityOpt"] == ["no-new-privileges"] and host_config["Init"] is True
    assert host_config["LogConfig"] == {"Config": {"max-file": "2", "max-size": "1m"}, "Type": "json-file"}
    assert (host_config["Dns"], host_config["DnsSearch"], host_config["DnsOptions"]) == \
           (["127.0.0.53"], ["example.test"], ["ndots:2"])
    assert host_config["ExtraHosts"] == ["db.example.test:10.0.0.5"]
    assert host_config["ShmSize"] == 16 << 20
    assert host_config["Devices"][0]["PathInContainer"] == "/dev/xnull"


def test_published_ports_stay_published() -> None:
    container, _ = load("ports")
    config = derive("ports").config

    assert config["HostConfig"]["PortBindings"] == container["HostConfig"]["PortBindings"]
    # 8080 is also v1's EXPOSE, but the engine publishes only exposed ports, so it must stay.
    assert set(config["ExposedPorts"]) == {"7000/tcp", "8080/tcp", "9999/udp"}
    assert "ExposedPorts" not in derive("aliases").config  # v1's 8080, not published


def test_every_mount_is_kept_and_anonymous_volumes_are_carried_by_name() -> None:
    container, _ = load("volumes")
    plan = derive("volumes")
    host_config = plan.config["HostConfig"]
    extra, data, mnt_anon = (anonymous_volume_at(container, d) for d in ("/extra", "/data", "/mnt-anon"))

    assert host_config["Binds"] == ["hmmt-derive-named:/named", "/tmp/hmmt-derive-bind:/bind:ro",
                                    f"{extra}:/extra", f"{data}:/data"]
    assert host_config["Mounts"] == [
        {"Target": "/mnt-anon", "Type": "volume", "Source": mnt_anon},
        *container["HostConfig"]["Mounts"][1:],
    ]
    assert host_config["Tmpfs"] == {"/scratch": "size=1m"}
    assert plan.config["Volumes"] == {"/extra": {}}  # the user's -v /extra; /data is v1's
    assert sorted(plan.anonymous_volumes) == sorted([extra, data, mnt_anon])


def test_read_only_anonymous_volume_stays_read_only() -> None:
    container, _ = load("volumes-from")
    plan = derive("volumes-from")

    assert plan.config["HostConfig"]["VolumesFrom"] == ["hmmt-derive-plain:ro"]
    assert plan.config["HostConfig"]["Binds"] == [f"{anonymous_volume_at(container, '/data')}:/data:ro"]


def test_bare_path_bind_is_replaced_by_its_volume() -> None:
    container, image = load("plain")
    container["HostConfig"]["Binds"] = ["/data"]
    plan = derive_create_config(container, image, NEW_IMAGE)

    assert plan.config["HostConfig"]["Binds"] == [f"{anonymous_volume_at(container, '/data')}:/data"]


def test_binds_stay_untouched_without_anonymous_volumes() -> None:
    container, image = load("volumes")
    container["Mounts"] = [m for m in container["Mounts"] if len(m.get("Name", "")) != 64]
    plan = derive_create_config(container, image, NEW_IMAGE)

    assert plan.config["HostConfig"]["Binds"] == container["HostConfig"]["Binds"]
    assert plan.config["HostConfig"]["Mounts"] == container["HostConfig"]["Mounts"]
    assert plan.anonymous_volumes == []


def test_static_addresses_stay_static_and_assigned_ones_dynamic() -> None:
    container, _ = load("static")
    plan = derive("static")

    assert plan.networks == [
        NetworkAttachment("hmmt-derive-static", "10.231.0.10", "fd00:231::10", ["169.254.231.10"],
                          ["static-alias"], [], None),
        # Connected after start: IPAMConfig {} and DriverOpts {} in inspect, still nothing static.
        NetworkAttachment("hmmt-derive-dynamic", None, None, [], ["second"], [], None),
    ]
    assert plan.config["NetworkingConfig"] == {"EndpointsConfig": {"hmmt-derive-static": {
        "IPAMConfig": {"IPv4Address": "10.231.0.10", "IPv6Address": "fd00:231::10",
                       "LinkLocalIPs": ["169.254.231.10"]},
        "Aliases": ["static-alias"],
    }}}
    assigned = container["NetworkSettings"]["Networks"]["hmmt-derive-dynamic"]["IPAddress"]
    assert assigned and assigned not in json.dumps(plan.config)


def test_aliases_and_links_are_kept_without_the_old_short_id() -> None:
    plan = derive("aliases")

    assert plan.networks == [NetworkAttachment("hmmt-derive-dynamic", None, None, [], ["web", "www"],
                                               ["hmmt-derive-ports:portsalias"], None)]
    assert plan.config["NetworkingConfig"]["EndpointsConfig"]["hmmt-derive-dynamic"] == {
        "Aliases": ["web", "www"], "Links": ["hmmt-derive-ports:portsalias"]}


def test_default_bridge_keeps_mac_and_links_in_create_form() -> None:
    plan = derive("mac")

    assert plan.config["MacAddress"] == "02:42:ac:11:00:63"
    assert plan.config["HostConfig"]["Links"] == ["hmmt-derive-plain:plainalias"]
    assert plan.networks == [NetworkAttachment("bridge", None, None, [], [], [], None)]
    assert plan.config["NetworkingConfig"] == {"EndpointsConfig": {"bridge": {}}}
    assert "MacAddress" not in derive("plain").config  # engine-generated MACs are not in Config


def test_host_network_keeps_no_hostname_and_no_attachments() -> None:
    plan = derive("host")

    assert plan.config["HostConfig"]["NetworkMode"] == "host"
    assert "Hostname" not in plan.config and "Domainname" not in plan.config
    assert plan.networks == [] and plan.config["NetworkingConfig"] == {"EndpointsConfig": {}}


def test_container_network_dependant_points_at_the_new_target() -> None:
    target = "f" * 64
    plan = derive("dependant", network_container_id=target)
    config, host_config = plan.config, plan.config["HostConfig"]

    assert host_config["NetworkMode"] == f"container:{target}"
    assert not {"Hostname", "Domainname", "ExposedPorts", "MacAddress"} & set(config)
    assert not set(CONTAINER_MODE_CONFLICTS) & set(host_config)
    assert config["Env"] == ["ROLE=sidecar"] and config["Cmd"] == ["sleep", "600"]
    assert plan.networks == []

    container, _ = load("dependant")
    unchanged = derive("dependant").config["HostConfig"]["NetworkMode"]
    assert unchanged == container["HostConfig"]["NetworkMode"]


def test_compose_labels_and_settings_are_kept() -> None:
    container, _ = load("compose")
    plan = derive("compose")

    compose = {k: v for k, v in container["Config"]["Labels"].items() if k.startswith("com.docker.compose.")}
    assert plan.config["Labels"] == {**compose, "app.role": "web"}
    assert plan.config["Env"] == ["SHARED=from-compose"]
    assert plan.config["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert plan.networks == [
        NetworkAttachment("hmmt-derive-compose_default", None, None, [], ["web"], [], None)]


@pytest.mark.parametrize("case", CASES)
def test_plan_is_a_clean_create_body_and_input_is_untouched(case: str) -> None:
    container, image = load(case)
    before = copy.deepcopy(container)
    plan = derive_create_config(container, image, NEW_IMAGE)

    assert container == before
    assert set(plan.config) <= {*CONFIG_KEYS, "Image", "HostConfig", "NetworkingConfig"}
    assert list(plan.config["NetworkingConfig"]["EndpointsConfig"]) == [n.network for n in plan.networks[:1]]
    json.dumps(plan.config)


def test_input_it_cannot_handle_is_refused() -> None:
    container, image = load("plain")
    with pytest.raises(InvalidRequest, match="not container"):
        derive_create_config(container, image, NEW_IMAGE, network_container_id="f" * 64)
    with pytest.raises(InvalidRequest):
        derive_create_config({"Id": container["Id"], "Config": {}}, image, NEW_IMAGE)
    with pytest.raises(InvalidRequest):
        derive_create_config(container, image, "")
    container["HostConfig"]["Links"] = ["nonsense"]
    with pytest.raises(InvalidRequest):
        derive_create_config(container, image, NEW_IMAGE)


def without_short_id(aliases: list[str] | None, container_id: str) -> list[str]:
    return [alias for alias in aliases or [] if alias != container_id[:12]]


def create_old_container(api: docker.APIClient, image: str, names: testbed.Names, bind_dir: Path
                         ) -> tuple[str, str, str]:
    """A v1 container with many user settings, on a static address plus a network connected after start."""
    subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
    static_net, other_net = names("derive-static"), names("derive-other")
    api.create_network(static_net, ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=f"{subnet}.0/24")]), labels=names.labels)
    api.create_network(other_net, labels=names.labels)
    host_config = api.create_host_config(
        binds=[f"{names('derive-vol')}:/named", f"{bind_dir}:/bind:ro"], tmpfs={"/scratch": "size=1m"},
        mounts=[docker.types.Mount("/mnt-anon", None, type="volume")],
        port_bindings={8080: ("127.0.0.1", testbed.free_port())},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        cap_add=["NET_ADMIN"], security_opt=["no-new-privileges"], init=True, mem_limit="64m",
        nano_cpus=500_000_000, pids_limit=64, ulimits=[docker.types.Ulimit(name="nofile", soft=1024, hard=2048)],
        sysctls={"net.core.somaxconn": "512"}, shm_size="16m", dns=["127.0.0.53"],
        dns_search=["example.test"], extra_hosts={"db.example.test": "10.0.0.5"},
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m"}), network_mode=static_net,
    )
    networking = api.create_networking_config({static_net: api.create_endpoint_config(
        ipv4_address=f"{subnet}.10", aliases=["app-alias"])})
    old = api.create_container(
        image, name=names("derive-old"), command=["/bin/app", "--user-flag"],
        environment={"EXTRA": "1"}, labels={**names.labels, "owner": "me"}, user="0:0",
        hostname="app-host", domainname="example.test", stop_signal="SIGINT", tty=True, stdin_open=True,
        mac_address="02:42:ac:1f:00:63", healthcheck={"Interval": 3_000_000_000},
        host_config=host_config, networking_config=networking)["Id"]
    api.start(old)
    api.connect_container_to_network(old, other_net, aliases=["second"])
    return old, static_net, f"{subnet}.10"


def connect(api: docker.APIClient, container: str, attachment: NetworkAttachment) -> None:
    links = dict(link.split(":", 1) for link in attachment.links)
    api.connect_container_to_network(
        container, attachment.network, ipv4_address=attachment.ipv4_address,
        ipv6_address=attachment.ipv6_address, aliases=attachment.aliases,
        link_local_ips=attachment.link_local_ips or None, links=links or None, driver_opt=attachment.driver_opts)


@pytest.mark.docker
def test_recreated_container_keeps_user_settings_and_takes_new_image_defaults(
        docker_client: docker.DockerClient, images: testbed.TestImages, docker_names: testbed.Names,
        tmp_path: Path) -> None:
    api = docker_client.api
    old, static_net, static_ip = create_old_container(api, images.ref("v1"), docker_names, tmp_path)
    testbed.wait_for(lambda: exec_output(api, old, ["cat", "/data/boots"]).split() == [b"1"],
                     what="v1 boot marker")
    before = api.inspect_container(old)
    api.stop(old, timeout=5)

    plan = derive_create_config(before, api.inspect_image(images.ref("v1")), images.ref("v2"))
    new = api.create_container_from_config(plan.config, docker_names("derive-new"))["Id"]
    for attachment in plan.networks[1:]:
        connect(api, new, attachment)
    api.start(new)
    testbed.wait_for(lambda: exec_output(api, new, ["cat", "/data/boots"]).split() == [b"1", b"2"],
                     what="v2 boot marker next to v1's in the carried anonymous volume")
    after = api.inspect_container(new)
    api.stop(new, timeout=5)

    old_hc, new_hc = before["HostConfig"], after["HostConfig"]
    assert {k: v for k, v in new_hc.items() if k not in ("Binds", "Mounts")} == \
           {k: v for k, v in old_hc.items() if k not in ("Binds", "Mounts")}
    old_mounts = {m["Destination"]: (m.get("Name") or m["Source"], m["RW"]) for m in before["Mounts"]}
    new_mounts = {m["Destination"]: (m.get("Name") or m["Source"], m["RW"]) for m in after["Mounts"]}
    assert set(new_mounts) == {*old_mounts, "/cache"}  # v2 declares /cache
    assert all(new_mounts[d] == old_mounts[d] for d in old_mounts)
    assert {old_mounts["/data"][0], old_mounts["/mnt-anon"][0]} == set(plan.anonymous_volumes)
    assert new_hc["Tmpfs"] == {"/scratch": "size=1m"}

    old_cfg, new_cfg = before["Config"], after["Config"]
    for key in ("Hostname", "Domainname", "User", "Cmd", "Tty", "OpenStdin", "StopSignal", "MacAddress"):
        assert new_cfg[key] == old_cfg[key], key
    assert {"EXTRA=1", "SHARED=from-v2", "APP_VERSION=2"} <= set(new_cfg["Env"])
    assert "ONLY_V1=yes" not in new_cfg["Env"]
    assert new_cfg["Labels"]["owner"] == "me" and new_cfg["Labels"]["app.version"] == "2"
    assert "app.v1" not in new_cfg["Labels"]
    assert new_cfg["WorkingDir"] == "/srv/v2"
    assert new_cfg["Healthcheck"]["Interval"] == 3_000_000_000 and new_cfg["Healthcheck"]["Retries"] == 3
    assert set(new_cfg["ExposedPorts"]) == {"8080/tcp", "9090/tcp"}

    old_nets, new_nets = before["NetworkSettings"]["Networks"], after["NetworkSettings"]["Networks"]
    assert set(new_nets) == set(old_nets) and len(new_nets) == 2
    for name, endpoint in old_nets.items():
        assert (new_nets[name]["IPAMConfig"] or {}) == (endpoint["IPAMConfig"] or {}), name
        assert without_short_id(new_nets[name]["Aliases"], new) == without_short_id(endpoint["Aliases"], old)
    assert new_nets[static_net]["IPAddress"] == static_ip


@pytest.mark.docker
def test_engine_accepts_plans_for_shared_and_host_network_modes(
        docker_client: docker.DockerClient, images: testbed.TestImages, docker_names: testbed.Names) -> None:
    api, v1, v2 = docker_client.api, images.ref("v1"), images.ref("v2")
    target = api.create_container(v1, name=docker_names("derive-target"), labels=docker_names.labels)["Id"]
    new_target = api.create_container(v2, name=docker_names("derive-target2"), labels=docker_names.labels)["Id"]
    dependant = api.create_container(v1, ["sleep", "60"], name=docker_names("derive-dependant"),
                                     labels=docker_names.labels,
                                     host_config=api.create_host_config(network_mode=f"container:{target}"))
    on_host = api.create_container(v1, name=docker_names("derive-host"), labels=docker_names.labels,
                                   host_config=api.create_host_config(network_mode="host"))
    api.start(target)
    api.start(dependant)  # once started, its Hostname reads as the target's short id
    dependant_inspect = api.inspect_container(dependant)
    api.kill(dependant)
    api.stop(target, timeout=5)
    assert dependant_inspect["Config"]["Hostname"] == target[:12]

    # Without the old image its EXPOSE counts as user-set, the hardest case for "conflicting options".
    dependant_plan = derive_create_config(dependant_inspect, None, v2, network_container_id=new_target)
    created = api.create_container_from_config(dependant_plan.config, docker_names("derive-dependant2"))
    assert api.inspect_container(created["Id"])["HostConfig"]["NetworkMode"] == f"container:{new_target}"

    host_plan = derive_create_config(api.inspect_container(on_host), None, v2)
    created = api.create_container_from_config(host_plan.config, docker_names("derive-host2"))
    assert api.inspect_container(created["Id"])["HostConfig"]["NetworkMode"] == "host"


def exec_output(api: docker.APIClient, container: str, cmd: list[str]) -> bytes:
    exec_id = api.exec_create(container, cmd)["Id"]
    return bytes(api.exec_start(exec_id))
