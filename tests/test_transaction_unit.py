"""The transaction's ordering guarantees, on an in-memory engine that records every call."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from worker.derive import NetworkAttachment
from worker.errors import EngineError, ImagePullFailed, RollbackFailed, UpdateRefused, UpdateRolledBack
from worker.journal import Journal
from worker.transaction import UpdateOptions, recover, update_container

DATA = Path(__file__).parent / "data" / "inspect"
OPTIONS = UpdateOptions(settle_seconds=0, health_timeout=1, poll_interval=0)


class MemoryEngine:
    """Containers as inspect dicts keyed by id; `fail_on` makes one method raise."""

    def __init__(self, container: dict[str, Any], image: dict[str, Any]) -> None:
        self.containers = {container["Id"]: container}
        self.images = {image["Id"]: image}
        self.calls: list[str] = []
        self.fail_on: str | None = None
        self.journal_seen: list[bool] = []
        self.journal: Journal | None = None

    def _record(self, call: str) -> None:
        self.calls.append(call)
        if self.journal is not None:
            self.journal_seen.append(bool(self.journal.entries()))
        if self.fail_on and call.startswith(self.fail_on):
            raise EngineError(f"injected failure in {call}")

    def _find(self, key: str) -> dict[str, Any] | None:
        for c in self.containers.values():
            if c["Id"] == key or c["Name"].lstrip("/") == key:
                return c
        return None

    def inspect_container(self, name_or_id: str) -> dict[str, Any] | None:
        found = self._find(name_or_id)
        return copy.deepcopy(found) if found else None

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        return self.images.get(ref) or next((i for i in self.images.values() if ref in i["RepoTags"]), None)

    def find_dependants(self, container_id: str, name: str) -> list[dict[str, Any]]:
        return []

    def pull(self, ref: str) -> dict[str, Any]:
        self._record(f"pull {ref}")
        image = {"Id": f"sha256:{len(self.images):064d}", "RepoTags": [ref], "Config": {}}
        self.images[image["Id"]] = image
        return image

    def create(self, name: str, config: dict[str, Any]) -> str:
        self._record(f"create {name}")
        new_id = f"new{len(self.containers)}".ljust(64, "0")
        self.containers[new_id] = {"Id": new_id, "Name": f"/{name}", "Config": config,
                                   "HostConfig": config["HostConfig"], "State": {"Running": False}}
        return new_id

    def connect(self, container_id: str, attachment: NetworkAttachment) -> None:
        self._record(f"connect {attachment.network}")

    def start(self, container_id: str) -> None:
        self._record(f"start {container_id[:4]}")
        self.containers[container_id]["State"] = {"Running": True}

    def stop(self, container_id: str, timeout: int | None) -> None:
        self._record(f"stop {container_id[:4]}")
        self.containers[container_id]["State"] = {"Running": False}

    def rename(self, container_id: str, new_name: str) -> None:
        self._record(f"rename {new_name}")
        self.containers[container_id]["Name"] = f"/{new_name}"

    def set_restart_policy(self, container_id: str, policy: dict[str, Any]) -> None:
        self._record(f"restart-policy {policy['Name']}")
        self.containers[container_id]["HostConfig"]["RestartPolicy"] = policy

    def remove(self, container_id: str, *, volumes: bool) -> None:
        self._record(f"remove {container_id[:4]}")
        self.containers.pop(container_id, None)

    def logs_tail(self, container_id: str, lines: int = 5) -> str:
        return ""

    def remove_image(self, image_id: str) -> bool:
        return True


@pytest.fixture
def world(tmp_path: Path) -> tuple[MemoryEngine, Journal, str]:
    container = json.loads((DATA / "static.container.json").read_text())
    image = json.loads((DATA / "static.image.json").read_text())
    container["State"] = {"Running": True}
    engine = MemoryEngine(container, image)
    journal = Journal(tmp_path)
    engine.journal = journal
    return engine, journal, container["Name"].lstrip("/")


def test_pulls_before_anything_destructive_and_journals_first(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    update_container(engine, journal, name, "example.org/app:main-1234567", OPTIONS, lambda _l, _m: None)
    assert engine.calls[0].startswith("pull ")
    destructive = [i for i, c in enumerate(engine.calls) if c.split()[0] in {"stop", "rename", "restart-policy"}]
    assert destructive and all(engine.journal_seen[i] for i in destructive)
    assert journal.entries() == []


def test_pull_failure_changes_nothing(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world

    def failing_pull(ref: str) -> dict[str, Any]:
        raise ImagePullFailed(ref, "manifest unknown")

    engine.pull = failing_pull  # type: ignore[method-assign]
    with pytest.raises(ImagePullFailed):
        update_container(engine, journal, name, "example.org/app:main-1234567", OPTIONS, lambda _l, _m: None)
    assert engine.calls == []


@pytest.mark.parametrize("failing", ["create", "connect", "start new1"])
def test_failure_after_stop_restores_the_old_container(failing: str,
                                                       world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    old = engine.inspect_container(name)
    assert old is not None
    engine.fail_on = failing
    with pytest.raises(UpdateRolledBack):
        update_container(engine, journal, name, "example.org/app:main-1234567", OPTIONS, lambda _l, _m: None)
    engine.fail_on = None
    restored = engine.inspect_container(name)
    assert restored is not None and restored["Id"] == old["Id"] and restored["State"]["Running"]
    assert restored["HostConfig"]["RestartPolicy"] == old["HostConfig"]["RestartPolicy"]
    assert list(engine.containers) == [old["Id"]]
    assert journal.entries() == []


def test_recover_is_idempotent(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    engine.fail_on = "start new1"

    def crash(step: str) -> None:
        if step == "created":
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        update_container(engine, journal, name, "example.org/app:main-1234567",
                         UpdateOptions(settle_seconds=0, checkpoint=crash), lambda _l, _m: None)
    engine.fail_on = None
    assert recover(engine, journal, lambda _l, _m: None) == [name]
    assert recover(engine, journal, lambda _l, _m: None) == []
    current = engine.inspect_container(name)
    assert current is not None and current["State"]["Running"] and len(engine.containers) == 1


def test_a_live_update_is_neither_recovered_nor_doubled(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    seen: list[str] = []

    def meanwhile(step: str) -> None:
        # Another process (here: another Journal on the same directory) tries both while we are mid-update.
        if step == "renamed":
            other = Journal(journal.directory)
            seen.extend(recover(engine, other, lambda _l, message: seen.append(message)))
            with pytest.raises(UpdateRefused, match=f"update of '{name}' is already running"):
                update_container(engine, other, name, "example.org/app:main-7654321", OPTIONS, lambda _l, _m: None)

    update_container(engine, journal, name, "example.org/app:main-1234567",
                     UpdateOptions(settle_seconds=0, checkpoint=meanwhile), lambda _l, _m: None)
    assert any("being updated by a live process" in line for line in seen)
    assert name not in seen
    current = engine.inspect_container(name)
    assert current is not None and current["Config"]["Image"] == "example.org/app:main-1234567"


def test_a_container_replaced_during_the_pull_is_left_alone(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    original = engine.inspect_container(name)
    assert original is not None
    real_pull = engine.pull

    def pull_while_the_user_recreates(ref: str) -> dict[str, Any]:
        engine.containers.pop(original["Id"])
        engine.containers["u" * 64] = {**copy.deepcopy(original), "Id": "u" * 64}
        return real_pull(ref)

    engine.pull = pull_while_the_user_recreates  # type: ignore[method-assign]
    with pytest.raises(UpdateRefused, match="replaced by another one"):
        update_container(engine, journal, name, "example.org/app:main-1234567", OPTIONS, lambda _l, _m: None)
    assert list(engine.containers) == ["u" * 64] and engine.calls == ["pull example.org/app:main-1234567"]
    assert journal.entries() == []


def test_recovery_never_frees_the_name_when_the_old_container_is_gone(
        world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world

    def crash(step: str) -> None:
        if step == "renamed":
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        update_container(engine, journal, name, "example.org/app:main-1234567",
                         UpdateOptions(settle_seconds=0, checkpoint=crash), lambda _l, _m: None)
    # Someone removes the backup by hand and creates their own container under the name.
    backup = engine.inspect_container(f"{name}-hmm-backup")
    assert backup is not None
    engine.containers.pop(backup["Id"])
    engine.containers["y" * 64] = {**copy.deepcopy(backup), "Id": "y" * 64, "Name": f"/{name}"}

    with pytest.raises(RollbackFailed, match="is gone"):
        recover(engine, journal, lambda _l, _m: None)
    assert "y" * 64 in engine.containers, "recovery removed a container it never created"


def test_a_stopped_container_stays_stopped_after_a_rollback(world: tuple[MemoryEngine, Journal, str]) -> None:
    engine, journal, name = world
    old = engine.inspect_container(name)
    assert old is not None
    engine.containers[old["Id"]]["State"] = {"Running": False}
    engine.fail_on = "create"

    with pytest.raises(UpdateRolledBack):
        update_container(engine, journal, name, "example.org/app:main-1234567", OPTIONS, lambda _l, _m: None)

    restored = engine.inspect_container(name)
    assert restored is not None and restored["Id"] == old["Id"] and not restored["State"]["Running"]
    assert not any(call.startswith(f"start {old['Id'][:4]}") for call in engine.calls)
