"""The Docker adapter: the only module that imports `docker`. Thin; raises UpdaterError subclasses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
from docker.auth import get_config_header, resolve_repository_name
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import parse_repository_tag
from requests.exceptions import RequestException
from urllib3.exceptions import HTTPError as Urllib3Error

from worker.derive import NetworkAttachment
from worker.errors import EngineError, ImagePullFailed

Inspect = dict[str, Any]

_CONTAINER_ID_IN_MOUNTS = re.compile(r"/containers/([0-9a-f]{64})/")


@contextmanager
def _engine_errors(action: str) -> Iterator[None]:
    try:
        yield
    except APIError as exc:
        raise EngineError(f"{action}: {exc.explanation or exc}") from exc
    except DockerException as exc:
        raise EngineError(f"{action}: {exc}") from exc


class DockerEngine:
    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    @classmethod
    def from_env(cls, timeout: int = 300) -> DockerEngine:
        try:
            client = docker.from_env(timeout=timeout)
        except DockerException as exc:
            raise EngineError(f"Docker engine not reachable: {exc}") from exc
        return cls(client.api)

    def close(self) -> None:
        self.api.close()

    def inspect_container(self, name_or_id: str) -> Inspect | None:
        try:
            result: Inspect = self.api.inspect_container(name_or_id)
        except NotFound:
            return None
        except APIError as exc:
            raise EngineError(f"inspect {name_or_id}: {exc.explanation or exc}") from exc
        return result

    def inspect_image(self, ref: str) -> Inspect | None:
        try:
            result: Inspect = self.api.inspect_image(ref)  # type: ignore[no-untyped-call]
        except (ImageNotFound, NotFound):
            return None
        except APIError as exc:
            raise EngineError(f"inspect image {ref}: {exc.explanation or exc}") from exc
        return result

    def list_containers(self) -> list[Inspect]:
        with _engine_errors("list containers"):
            summaries = self.api.containers(all=True)
        found = (self.inspect_container(s["Id"]) for s in summaries)
        return [c for c in found if c is not None]

    def find_dependants(self, container_id: str, name: str) -> list[Inspect]:
        """Containers sharing this one's network namespace (`network_mode: container:<it>`)."""
        modes = {f"container:{container_id}", f"container:{name}"}
        with _engine_errors("list containers"):
            summaries = self.api.containers(all=True)
        # The list already carries each NetworkMode: inspect only the matches, not every container.
        matches = [s["Id"] for s in summaries if (s.get("HostConfig") or {}).get("NetworkMode") in modes]
        found = (self.inspect_container(container) for container in matches)
        return [c for c in found if c is not None]

    def pull(self, ref: str) -> Inspect:
        """Pull `ref` (credentials from the Docker config, as docker-py loads them) and inspect it; fails when
        the engine reports no progress for the client's timeout (a registry that stalls)."""
        repository, tag = _split_tag(ref)
        try:
            for event in self._pull_events(repository, tag):
                if "error" in event:
                    raise ImagePullFailed(ref, str(event["error"]).strip())
        except APIError as exc:
            raise ImagePullFailed(ref, str(exc.explanation or exc)) from exc
        except DockerException as exc:
            raise ImagePullFailed(ref, str(exc)) from exc
        except (RequestException, Urllib3Error, OSError) as exc:  # the engine went silent: a stalled pull
            raise ImagePullFailed(ref, f"the engine stopped answering ({exc})") from exc
        image = self.inspect_image(ref)
        if image is None:
            raise ImagePullFailed(ref, "image not present after pull")
        return image

    def _pull_events(self, repository: str, tag: str | None) -> Iterator[dict[str, Any]]:
        """APIClient.pull(stream=True, decode=True), but reading the progress with the client's timeout:
        docker-py reads it with none, so a stalled pull would hang the update for good."""
        api: Any = self.api  # the private helpers APIClient.pull is made of
        repository, image_tag = parse_repository_tag(repository)
        login = get_config_header(api, resolve_repository_name(repository)[0])
        response = api._post(api._url("/images/create"), params={"fromImage": repository,
                                                                 "tag": tag or image_tag or "latest"},
                             headers={"X-Registry-Auth": login} if login else {}, stream=True, timeout=api.timeout)
        api._raise_for_status(response)
        yield from api._stream_helper(response, decode=True)

    def create(self, name: str, config: dict[str, Any]) -> str:
        with _engine_errors(f"create {name}"):
            created = self.api.create_container_from_config(config, name)  # type: ignore[no-untyped-call]
        return str(created["Id"])

    def connect(self, container_id: str, attachment: NetworkAttachment) -> None:
        with _engine_errors(f"connect to network {attachment.network}"):
            self.api.connect_container_to_network(
                container_id, attachment.network,
                ipv4_address=attachment.ipv4_address, ipv6_address=attachment.ipv6_address,
                aliases=attachment.aliases or None,
                links=[tuple(link.split(":", 1)) for link in attachment.links] or None,  # type: ignore[misc]
                link_local_ips=attachment.link_local_ips or None, driver_opt=attachment.driver_opts,
            )

    def start(self, container_id: str) -> None:
        with _engine_errors("start"):
            self.api.start(container_id)

    def stop(self, container_id: str, timeout: int | None) -> None:
        """Stop honouring the container's StopSignal; `timeout` None means its StopTimeout or 10 s."""
        with _engine_errors("stop"):
            self.api.stop(container_id, timeout=timeout)

    def rename(self, container_id: str, new_name: str) -> None:
        with _engine_errors(f"rename to {new_name}"):
            self.api.rename(container_id, new_name)

    def set_restart_policy(self, container_id: str, policy: dict[str, Any]) -> None:
        with _engine_errors("update restart policy"):
            self.api.update_container(container_id, restart_policy=policy)  # type: ignore[arg-type]

    def remove(self, container_id: str, *, volumes: bool) -> None:
        """Force-remove; `volumes` removes only the container's own anonymous volumes, never named ones."""
        try:
            self.api.remove_container(container_id, v=volumes, force=True)
        except NotFound:
            return
        except APIError as exc:
            raise EngineError(f"remove {container_id[:12]}: {exc.explanation or exc}") from exc

    def logs_tail(self, container_id: str, lines: int = 5) -> str:
        try:
            raw: bytes = self.api.logs(container_id, tail=lines)
        except DockerException:
            return ""
        return raw.decode(errors="replace").strip()

    def remove_image(self, image_id: str) -> bool:
        """Remove an image no container uses; False when the engine refuses (in use, tagged elsewhere)."""
        try:
            self.api.remove_image(image_id)
        except DockerException:
            return False
        return True


def _split_tag(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    name, _, tag = ref.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return ref, "latest"


def own_container_id(mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    """The id of the container this process runs in, read from its bind-mounted hostname/resolv.conf."""
    try:
        text = mountinfo.read_text()
    except OSError:
        return None
    match = _CONTAINER_ID_IN_MOUNTS.search(text)
    return match.group(1) if match else None
