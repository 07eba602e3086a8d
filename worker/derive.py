"""The replacement container's create-config, derived from the old container's inspect: pure, no I/O."""

from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from worker.errors import InvalidRequest

# Container.Config fields that POST /containers/create accepts (API 1.41); everything else is state.
CONFIG_KEYS = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "Volumes", "WorkingDir", "Entrypoint",
    "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
)
# Plain values the engine copies from the image when the container leaves them unset.
IMAGE_SCALAR_KEYS = ("WorkingDir", "User", "StopSignal", "Shell", "OnBuild")
# HostConfig is copied whole except these: ContainerIDFile is a client-side file the CLI writes.
HOST_CONFIG_NEVER_SENT = ("ContainerIDFile",)
# Engine 20.10 answers "conflicting options" to each of these with network_mode container:<id>.
CONTAINER_MODE_CONFLICTS = ("PortBindings", "PublishAllPorts", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts",
                            "Links")
ANONYMOUS_VOLUME_NAME = re.compile(r"[0-9a-f]{64}")
DEFAULT_BRIDGE = "bridge"


@dataclass(frozen=True)
class NetworkAttachment:
    network: str
    ipv4_address: str | None
    ipv6_address: str | None
    link_local_ips: list[str]
    aliases: list[str]
    links: list[str]
    driver_opts: dict[str, str] | None

    def endpoint_config(self) -> dict[str, Any]:
        """The EndpointSettings body for create (NetworkingConfig) or POST /networks/{id}/connect."""
        ipam: dict[str, Any] = {}
        if self.ipv4_address:
            ipam["IPv4Address"] = self.ipv4_address
        if self.ipv6_address:
            ipam["IPv6Address"] = self.ipv6_address
        if self.link_local_ips:
            ipam["LinkLocalIPs"] = list(self.link_local_ips)
        body: dict[str, Any] = {"IPAMConfig": ipam} if ipam else {}
        if self.aliases:
            body["Aliases"] = list(self.aliases)
        if self.links:
            body["Links"] = list(self.links)
        if self.driver_opts:
            body["DriverOpts"] = dict(self.driver_opts)
        return body


@dataclass(frozen=True)
class CreatePlan:
    config: dict[str, Any]
    networks: list[NetworkAttachment]
    anonymous_volumes: list[str]


def derive_create_config(container: dict[str, Any], old_image: dict[str, Any] | None, new_image: str,
                         *, network_container_id: str | None = None) -> CreatePlan:
    """Body for POST /containers/create that recreates `container` on `new_image` with every user setting."""
    if not new_image:
        raise InvalidRequest("new image reference is empty")
    short_id, old_config, host_config = _parts(container)
    image_config: dict[str, Any] = (old_image or {}).get("Config") or {}

    mode = host_config.get("NetworkMode") or "default"
    if network_container_id is not None:
        if not mode.startswith("container:"):
            raise InvalidRequest(f"network mode is {mode!r}, not container:<id>; nothing to point elsewhere")
        mode = host_config["NetworkMode"] = f"container:{network_container_id}"

    config = _user_config(old_config, image_config, short_id, set(host_config.get("PortBindings") or {}))
    config["Image"] = new_image
    for key in HOST_CONFIG_NEVER_SENT:
        host_config.pop(key, None)
    if host_config.get("Links"):
        host_config["Links"] = [_create_form_link(link) for link in host_config["Links"]]
    anonymous_volumes = _carry_anonymous_volumes(container.get("Mounts") or [], host_config)

    if mode == "host" or mode.startswith("container:"):
        for key in ("Hostname", "Domainname", "MacAddress"):
            config.pop(key, None)
    if mode.startswith("container:"):
        config.pop("ExposedPorts", None)
        for key in CONTAINER_MODE_CONFLICTS:
            host_config.pop(key, None)

    networks = _attachments(mode, container.get("NetworkSettings") or {}, short_id)
    endpoints = {networks[0].network: networks[0].endpoint_config()} if networks else {}
    config["HostConfig"] = host_config
    config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return CreatePlan(config=config, networks=networks, anonymous_volumes=anonymous_volumes)


def _parts(container: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Short id, Config and a private copy of HostConfig; raises InvalidRequest when inspect is not one."""
    container_id = container.get("Id")
    config, host_config = container.get("Config"), container.get("HostConfig")
    if not isinstance(container_id, str) or len(container_id) < 12:
        raise InvalidRequest("container inspect has no Id")
    if not isinstance(config, dict) or not isinstance(host_config, dict):
        raise InvalidRequest(f"container {container_id[:12]} inspect lacks Config or HostConfig")
    return container_id[:12], config, copy.deepcopy(host_config)


def _user_config(old: dict[str, Any], image: dict[str, Any], short_id: str, published: set[str]
                 ) -> dict[str, Any]:
    """The allow-listed Config fields, minus what the engine filled in from the old image."""
    config = {key: copy.deepcopy(old[key]) for key in CONFIG_KEYS if old.get(key) is not None}
    if config.get("Hostname") == short_id:
        del config["Hostname"]
    if not image:
        return config

    for key in IMAGE_SCALAR_KEYS:
        if key in config and config[key] == image.get(key):
            del config[key]
    entrypoint_from_image = old.get("Entrypoint") == image.get("Entrypoint")
    if entrypoint_from_image:
        config.pop("Entrypoint", None)
        # With a user entrypoint the engine never merges the image's Cmd, so an equal Cmd was typed.
        if old.get("Cmd") == image.get("Cmd"):
            config.pop("Cmd", None)

    image_env = set(image.get("Env") or [])
    config["Env"] = [entry for entry in config.get("Env", []) if entry not in image_env]
    image_labels = image.get("Labels") or {}
    config["Labels"] = {key: value for key, value in config.get("Labels", {}).items()
                        if key not in image_labels or image_labels[key] != value}
    # The engine publishes only exposed ports: a published port stays exposed whatever the new image says.
    declared_ports = set(image.get("ExposedPorts") or {}) - published
    config["ExposedPorts"] = {port: value for port, value in config.get("ExposedPorts", {}).items()
                              if port not in declared_ports}
    declared_volumes = image.get("Volumes") or {}
    config["Volumes"] = {path: value for path, value in config.get("Volumes", {}).items()
                         if path not in declared_volumes}
    image_health = image.get("Healthcheck") or {}
    config["Healthcheck"] = {field: value for field, value in config.get("Healthcheck", {}).items()
                             if field not in image_health or image_health[field] != value}
    for key in ("Env", "Labels", "ExposedPorts", "Volumes", "Healthcheck"):
        if not config[key]:
            del config[key]
    return config


def _create_form_link(link: str) -> str:
    """Inspect shows links as "/other:/me/alias"; create takes "other:alias"."""
    source, sep, target = link.partition(":")
    if not sep or not source or not target:
        raise InvalidRequest(f"cannot read link {link!r}")
    return f"{source.lstrip('/')}:{target.rsplit('/', 1)[-1]}"


def _carry_anonymous_volumes(mounts: list[dict[str, Any]], host_config: dict[str, Any]) -> list[str]:
    """Mount each anonymous volume by name at its old path, so the new container keeps its data."""
    binds: list[str] = list(host_config.get("Binds") or [])
    declared: list[dict[str, Any]] = host_config.get("Mounts") or []
    covered = {posixpath.normpath(bind.split(":")[1]) for bind in binds if bind.count(":") >= 1}
    covered |= {posixpath.normpath(m.get("Target", "")) for m in declared if m.get("Source")}
    sourceless = {posixpath.normpath(m.get("Target", "")): m for m in declared
                  if m.get("Type") == "volume" and not m.get("Source")}

    carried: list[str] = []
    for mount in mounts:
        name, destination = mount.get("Name") or "", posixpath.normpath(mount.get("Destination") or "/")
        anonymous = mount.get("Type") == "volume" and ANONYMOUS_VOLUME_NAME.fullmatch(name)
        if not anonymous or destination in covered:
            continue
        carried.append(name)
        if destination in sourceless:
            sourceless[destination]["Source"] = name
            continue
        # A bare "/path" bind is the API's own way to ask for an anonymous volume; the named one replaces it.
        binds = [bind for bind in binds if ":" in bind or posixpath.normpath(bind) != destination]
        binds.append(f"{name}:{destination}" + ("" if mount.get("RW", True) else ":ro"))
    if binds != list(host_config.get("Binds") or []):
        host_config["Binds"] = binds
    return carried


def _attachments(mode: str, settings: dict[str, Any], short_id: str) -> list[NetworkAttachment]:
    """Every network the container is on, the one NetworkMode names first; none for host/none/container:."""
    if mode in ("host", "none") or mode.startswith("container:"):
        return []
    endpoints: dict[str, dict[str, Any]] = settings.get("Networks") or {}
    primary = DEFAULT_BRIDGE if mode == "default" else mode
    # NetworkMode may hold the network id the user typed rather than its name.
    primary = next((name for name, ep in endpoints.items()
                    if name == primary or (ep.get("NetworkID") or "").startswith(primary)), primary)
    names = sorted(endpoints, key=lambda name: name != primary)
    return [_attachment(name, endpoints[name] or {}, short_id) for name in names]


def _attachment(network: str, endpoint: dict[str, Any], short_id: str) -> NetworkAttachment:
    # After `docker network connect` the engine reports IPAMConfig as {} instead of null.
    ipam: dict[str, Any] = endpoint.get("IPAMConfig") or {}
    user_defined = network != DEFAULT_BRIDGE  # the default bridge refuses aliases and static addresses
    aliases = [alias for alias in endpoint.get("Aliases") or [] if alias != short_id]
    return NetworkAttachment(
        network=network,
        ipv4_address=(ipam.get("IPv4Address") or None) if user_defined else None,
        ipv6_address=(ipam.get("IPv6Address") or None) if user_defined else None,
        link_local_ips=list(ipam.get("LinkLocalIPs") or []) if user_defined else [],
        aliases=aliases if user_defined else [],
        links=list(endpoint.get("Links") or []),
        driver_opts=dict(endpoint["DriverOpts"]) if endpoint.get("DriverOpts") else None,
    )
