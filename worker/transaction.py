"""The update transaction: pull, journal, stop, swap, start, health gate, commit or roll back.

It receives its adapters (an Engine and a Journal) so it runs the same against a fake and the real engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.derive import CreatePlan, NetworkAttachment, derive_create_config
from worker.errors import (
    ContainerNotFound,
    HealthCheckFailed,
    RollbackFailed,
    UpdateRefused,
    UpdaterError,
    UpdateRolledBack,
)
from worker.journal import COMMITTING, Entry, Journal, Member
from worker.progress import ERROR, INFO, WARNING, ProgressSink

Inspect = dict[str, Any]
BACKUP_SUFFIX = "-hmm-backup"
NO_RESTART: dict[str, Any] = {"Name": "no", "MaximumRetryCount": 0}


class Engine(Protocol):
    def inspect_container(self, name_or_id: str) -> Inspect | None: ...
    def inspect_image(self, ref: str) -> Inspect | None: ...
    def find_dependants(self, container_id: str, name: str) -> list[Inspect]: ...
    def pull(self, ref: str) -> Inspect: ...
    def create(self, name: str, config: dict[str, Any]) -> str: ...
    def connect(self, container_id: str, attachment: NetworkAttachment) -> None: ...
    def start(self, container_id: str) -> None: ...
    def stop(self, container_id: str, timeout: int | None) -> None: ...
    def rename(self, container_id: str, new_name: str) -> None: ...
    def set_restart_policy(self, container_id: str, policy: dict[str, Any]) -> None: ...
    def remove(self, container_id: str, *, volumes: bool) -> None: ...
    def logs_tail(self, container_id: str, lines: int = 5) -> str: ...
    def remove_image(self, image_id: str) -> bool: ...


def _no_checkpoint(step: str) -> None:
    return None


@dataclass(frozen=True)
class UpdateOptions:
    settle_seconds: float = 10.0
    health_timeout: float = 120.0
    cleanup_images: bool = False
    force: bool = False
    poll_interval: float = 0.5
    # Called with each step name; fault-injection tests use it to pause the process at a known step.
    checkpoint: Callable[[str], None] = field(default=_no_checkpoint)


@dataclass(frozen=True)
class UpdateResult:
    container_name: str
    container_id: str
    old_image: str
    new_image: str
    updated: bool  # False when the image was already current
    message: str


def backup_name(name: str) -> str:
    return f"{name}{BACKUP_SUFFIX}"


def update_container(engine: Engine, journal: Journal, name: str, new_image: str, options: UpdateOptions,
                     sink: ProgressSink, *, self_container_id: str | None = None,
                     expected_id: str | None = None) -> UpdateResult:
    """Recreate container `name` from `new_image`, keeping every user setting; roll back on any failure.

    `expected_id`: the container the caller checked (allow-lists); a different one under the name is refused."""
    found = engine.inspect_container(name)
    if found is None:
        if journal.get(name) is not None:  # mid-swap, the name is briefly free
            raise UpdateRefused(f"An update of '{name}' is already running or awaits recovery")
        raise ContainerNotFound(name)
    name = found["Name"].lstrip("/")
    with journal.hold(name) as owned:
        if not owned:
            raise UpdateRefused(f"An update of '{name}' is already running in another process")
        # Look again under the lock: another process may have replaced the container meanwhile.
        old = _unchanged(engine, name, expected_id or found["Id"])
        return _update_owned(engine, journal, old, new_image, options, sink, self_container_id)


def _unchanged(engine: Engine, name: str, expected_id: str) -> Inspect:
    current = engine.inspect_container(name)
    if current is None:
        raise ContainerNotFound(name)
    if current["Id"] != expected_id:
        raise UpdateRefused(f"Container '{name}' was replaced by another one meanwhile; nothing was changed")
    return current


def _update_owned(engine: Engine, journal: Journal, old: Inspect, new_image: str, options: UpdateOptions,
                  sink: ProgressSink, self_container_id: str | None) -> UpdateResult:
    name = old["Name"].lstrip("/")
    old_image = old["Config"]["Image"]
    _refuse_unsafe(engine, journal, old, self_container_id)
    sink(INFO, f"🚀 Updating {name}: {old_image} → {new_image}")

    sink(INFO, f"📥 Pulling {new_image} (the old container keeps running)")
    pulled = engine.pull(new_image)
    sink(INFO, f"✅ Pulled {new_image} ({pulled['Id'][:19]})")
    options.checkpoint("pulled")
    old = _unchanged(engine, name, old["Id"])  # a pull can take minutes; the user may act meanwhile
    if pulled["Id"] == old["Image"] and not options.force:
        message = f"{name} is already up to date ({new_image})"
        sink(INFO, f"✅ {message}")
        return UpdateResult(name, old["Id"], old_image, new_image, False, message)

    plan = derive_create_config(old, engine.inspect_image(old["Image"]), new_image)
    dependants = engine.find_dependants(old["Id"], name)
    entry = Entry(name, new_image, _member(old), [_member(d) for d in dependants])
    for member in entry.members:
        if engine.inspect_container(member.backup_name) is not None:
            raise UpdateRefused(f"A container named '{member.backup_name}' already exists; remove it or run "
                                "`hmm-updater recover`")
    journal.write(entry)
    options.checkpoint("journaled")
    try:
        _swap(engine, journal, entry, old, plan, dependants, options, sink)
        _health_gate(engine, entry, options, sink)
    except Exception as exc:
        cause = str(exc) if isinstance(exc, UpdaterError) else f"{type(exc).__name__}: {exc}"
        sink(ERROR, f"❌ Update failed: {cause}")
        sink(WARNING, f"⏪ Rolling back to {old_image}")
        try:
            restore(engine, entry, sink, settle_seconds=min(options.settle_seconds, 3.0))
        except Exception as rollback_exc:
            sink(ERROR, f"🚨 ROLLBACK FAILED: {rollback_exc}. The old container is kept as "
                        f"'{entry.target.backup_name}'; run `hmm-updater recover` or restore it by hand.")
            raise RollbackFailed(f"{cause}; rollback failed: {rollback_exc}") from exc
        journal.delete(name)
        sink(WARNING, f"↩️ Rolled back: {name} runs {old_image} again")
        raise UpdateRolledBack(cause, old_image) from exc

    entry.phase = COMMITTING
    journal.write(entry)
    options.checkpoint("healthy")
    _commit(engine, journal, entry, sink)
    new_id = entry.target.new_id or ""
    if options.cleanup_images and old["Image"] != pulled["Id"]:
        removed = engine.remove_image(old["Image"])
        sink(INFO, f"🧹 Old image {old['Image'][:19]} {'removed' if removed else 'kept (still in use)'}")
    sink(INFO, "✅ Update completed successfully")
    return UpdateResult(name, new_id, old_image, new_image, True, f"{name} updated to {new_image} ({new_id[:12]})")


def _refuse_unsafe(engine: Engine, journal: Journal, old: Inspect, self_container_id: str | None) -> None:
    name = old["Name"].lstrip("/")
    if self_container_id and old["Id"] == self_container_id:
        raise UpdateRefused(f"Refusing to recreate '{name}': the updater itself runs in it")
    if old["HostConfig"].get("AutoRemove"):
        raise UpdateRefused(f"Refusing to recreate '{name}': it has auto-remove set, so it cannot be kept "
                            "as a backup while its successor starts")
    if journal.get(name) is not None:
        raise UpdateRefused(f"An interrupted update of '{name}' awaits recovery; run `hmm-updater recover`")


def _member(container: Inspect) -> Member:
    name = container["Name"].lstrip("/")
    policy = container["HostConfig"].get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}
    return Member(name, container["Id"], container["Config"]["Image"], backup_name(name), policy,
                  was_running=bool(container["State"].get("Running")))


def _swap(engine: Engine, journal: Journal, entry: Entry, old: Inspect, plan: CreatePlan,
          dependants: list[Inspect], options: UpdateOptions, sink: ProgressSink) -> None:
    # A restart policy left in place would let a daemon restart start the backup beside the new one.
    for member in entry.members:
        engine.set_restart_policy(member.old_id, NO_RESTART)
    for member in entry.dependants:
        sink(INFO, f"⏹️ Stopping dependant {member.name}")
        engine.stop(member.old_id, _stop_timeout(engine.inspect_container(member.old_id)))
    sink(INFO, f"⏹️ Stopping {entry.container_name}")
    engine.stop(old["Id"], _stop_timeout(old))
    options.checkpoint("stopped")
    for member in entry.members:
        engine.rename(member.old_id, member.backup_name)
    sink(INFO, f"📦 Kept the old container as {entry.target.backup_name}")
    options.checkpoint("renamed")

    sink(INFO, f"🆕 Creating {entry.container_name} from {entry.new_image}")
    entry.target.new_id = _create(engine, entry.container_name, plan, sink)
    journal.write(entry)
    options.checkpoint("created")
    sink(INFO, f"▶️ Starting {entry.container_name}")
    engine.start(entry.target.new_id)
    for member, dependant in zip(entry.dependants, dependants, strict=True):
        sink(INFO, f"🔗 Recreating dependant {member.name} on the new container")
        dep_plan = derive_create_config(dependant, engine.inspect_image(dependant["Image"]),
                                        dependant["Config"]["Image"], network_container_id=entry.target.new_id)
        member.new_id = _create(engine, member.name, dep_plan, sink)
        journal.write(entry)
        engine.start(member.new_id)
    options.checkpoint("started")


def _create(engine: Engine, name: str, plan: CreatePlan, sink: ProgressSink) -> str:
    container_id = engine.create(name, plan.config)
    for attachment in plan.networks[1:]:
        static = f" (static {attachment.ipv4_address})" if attachment.ipv4_address else ""
        sink(INFO, f"🔌 Connecting {name} to network {attachment.network}{static}")
        engine.connect(container_id, attachment)
    return container_id


def _stop_timeout(container: Inspect | None) -> int | None:
    timeout = (container or {}).get("Config", {}).get("StopTimeout")
    return int(timeout) if timeout is not None else None


def _health_gate(engine: Engine, entry: Entry, options: UpdateOptions, sink: ProgressSink) -> None:
    """Every new container must keep running for settle_seconds and, with a healthcheck, become healthy."""
    sink(INFO, f"🩺 Checking health: running for {options.settle_seconds:g}s"
               f", healthy within {options.health_timeout:g}s if it has a healthcheck")
    started = time.monotonic()
    pending = {m.new_id: m.name for m in entry.members if m.new_id}
    while True:
        elapsed = time.monotonic() - started
        for container_id, name in list(pending.items()):
            current = _inspect_new(engine, container_id, name)
            state: dict[str, Any] = current["State"]
            if not state.get("Running") or state.get("Restarting") or current.get("RestartCount"):
                logs = engine.logs_tail(container_id)
                raise HealthCheckFailed(f"{name} exited with code {state.get('ExitCode')}"
                                        + (f": {logs.splitlines()[-1]}" if logs else ""))
            health = (state.get("Health") or {}).get("Status")
            if health == "unhealthy":
                probes = (state.get("Health") or {}).get("Log") or []
                output = probes[-1].get("Output", "").strip() if probes else ""
                raise HealthCheckFailed(f"{name} became unhealthy" + (f": {output}" if output else ""))
            if elapsed >= options.settle_seconds and health in (None, "healthy"):
                del pending[container_id]
        if not pending:
            sink(INFO, "💚 New container is running" + (" and healthy" if _has_health(engine, entry) else ""))
            return
        if elapsed > max(options.health_timeout, options.settle_seconds):
            raise HealthCheckFailed(f"{', '.join(pending.values())} did not become healthy within "
                                    f"{options.health_timeout:g}s")
        options.checkpoint("health")
        time.sleep(options.poll_interval)


def _inspect_new(engine: Engine, container_id: str, name: str) -> Inspect:
    current = engine.inspect_container(container_id)
    if current is None:
        raise HealthCheckFailed(f"{name} disappeared")
    return current


def _has_health(engine: Engine, entry: Entry) -> bool:
    current = engine.inspect_container(entry.target.new_id or "")
    return bool(current and current["State"].get("Health"))


def _commit(engine: Engine, journal: Journal, entry: Entry, sink: ProgressSink) -> None:
    for member in entry.members:
        # volumes=False: anonymous volumes now live on in the new container.
        engine.remove(member.old_id, volumes=False)
    sink(INFO, f"🧹 Removed the backup {entry.target.backup_name}")
    journal.delete(entry.container_name)


def restore(engine: Engine, entry: Entry, sink: ProgressSink, *, settle_seconds: float = 2.0) -> None:
    """Put the old containers back under their names with their restart policies, as running as they were.

    Idempotent. Nothing is removed unless every old container still exists: a name taken by someone else's
    container after ours vanished must never be freed by deleting theirs."""
    for member in entry.members:
        if engine.inspect_container(member.old_id) is None:
            raise RollbackFailed(f"the old container {member.name} ({member.old_id[:12]}) is gone")
    for member in reversed(entry.members):  # dependants first: they live in the target's namespace
        current = engine.inspect_container(member.name)
        if current is not None and current["Id"] != member.old_id:
            engine.remove(current["Id"], volumes=True)
        if member.new_id and member.new_id != member.old_id:
            engine.remove(member.new_id, volumes=True)
    for member in entry.members:
        old = engine.inspect_container(member.old_id) or {}
        if old["Name"].lstrip("/") != member.name:
            engine.rename(member.old_id, member.name)
        engine.set_restart_policy(member.old_id, member.restart_policy)
        if member.was_running and not old["State"].get("Running"):
            engine.start(member.old_id)
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline:
        time.sleep(0.25)
    for member in entry.members:
        state = (engine.inspect_container(member.old_id) or {}).get("State", {})
        if member.was_running and not state.get("Running"):
            raise RollbackFailed(f"{member.name} did not stay running after the rollback")


def recover(engine: Engine, journal: Journal, sink: ProgressSink) -> list[str]:
    """Bring back every container whose update was interrupted; returns their names."""
    recovered = []
    for entry in journal.entries():
        with journal.hold(entry.container_name) as owned:
            if not owned:
                sink(INFO, f"⏳ {entry.container_name} is being updated by a live process; left alone")
                continue
            fresh = journal.get(entry.container_name)  # another recovery may have finished it meanwhile
            if fresh is None:
                continue
            _recover_entry(engine, journal, fresh, sink)
        recovered.append(entry.container_name)
    return recovered


def _recover_entry(engine: Engine, journal: Journal, entry: Entry, sink: ProgressSink) -> None:
    name = entry.container_name
    if entry.phase == COMMITTING and _new_containers_present(engine, entry):
        sink(INFO, f"♻️ Recovering {name}: the new container had passed its health gate; finishing")
        for member in entry.members:
            current = engine.inspect_container(member.new_id or "")
            if current and not current["State"].get("Running"):
                engine.start(current["Id"])
        _commit(engine, journal, entry, sink)
        return
    sink(WARNING, f"♻️ Recovering {name}: interrupted update to {entry.new_image}; restoring {entry.target.old_image}")
    restore(engine, entry, sink)
    journal.delete(name)
    sink(INFO, f"↩️ {name} runs {entry.target.old_image} again")


def _new_containers_present(engine: Engine, entry: Entry) -> bool:
    return all(m.new_id and engine.inspect_container(m.new_id) is not None for m in entry.members)
