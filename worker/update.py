"""Runs one update or a recovery with the real adapters built from settings."""

from __future__ import annotations

import time

from worker import policy
from worker.docker_engine import DockerEngine, own_container_id
from worker.errors import ContainerNotFound
from worker.journal import Journal
from worker.progress import INFO, ProgressSink
from worker.redact import Redactor
from worker.reference import parse_image_reference, validate_container_name
from worker.settings import Settings
from worker.transaction import UpdateOptions, UpdateResult, recover, update_container


def options_from(settings: Settings, *, force: bool = False) -> UpdateOptions:
    pause_at = settings.updater_debug_pause_at

    def checkpoint(step: str) -> None:
        # Fault-injection tests pause here and SIGKILL the process at a known step.
        if pause_at and step == pause_at:
            print(f"PAUSED AT {step}", flush=True)
            time.sleep(3600)

    return UpdateOptions(
        settle_seconds=settings.updater_settle_seconds,
        health_timeout=settings.updater_health_timeout,
        cleanup_images=settings.updater_cleanup_images,
        force=force,
        checkpoint=checkpoint,
    )


def perform_update(name: str, new_image: str | None, settings: Settings, sink: ProgressSink,
                   *, force: bool = False, enforce_policy: bool = False) -> UpdateResult:
    """Update container `name` to `new_image` (None: newest main-<sha>); raises UpdaterError on failure.

    `enforce_policy` checks the allow-lists against the engine's own view of the container (the API checked
    the inventory already; the CLI, run by root on the host, does not check). The container's env values
    are masked in every line and error the update reports."""
    name = validate_container_name(name)
    engine = DockerEngine.from_env(timeout=settings.updater_engine_timeout)
    redact = Redactor([])
    try:
        current = engine.inspect_container(name)
        old_image = current["Config"]["Image"] if current else ""
        redact = Redactor.for_container(current, [name, old_image, new_image or ""])
        sink = redact.sink(sink)
        if enforce_policy:
            if current is None:
                raise ContainerNotFound(name)
            policy.check_container(name, current["Config"].get("Labels"), settings)
        if new_image is None:
            if current is None:
                raise ContainerNotFound(name)
            new_image = resolve_latest(old_image, settings, sink)
        else:
            new_image = str(parse_image_reference(new_image))
        if enforce_policy and current is not None:
            policy.check_image(name, old_image, new_image, settings)
        return update_container(engine, Journal(settings.updater_state_dir), name, new_image,
                                options_from(settings, force=force), sink,
                                self_container_id=own_container_id(),
                                expected_id=current["Id"] if current else None)
    except Exception as exc:
        redact.scrub(exc)
        raise
    finally:
        engine.close()


def resolve_latest(current_image: str, settings: Settings, sink: ProgressSink) -> str:
    from worker.resolver import ImageResolver

    sink(INFO, f"🔎 Resolving the newest {settings.updater_tag_prefix}<sha> image")
    resolver = ImageResolver.from_settings(settings)
    try:
        latest = resolver.latest(current_image)
    finally:
        resolver.close()
    sink(INFO, f"🏷️ Newest image: {latest}")
    return latest


def recover_all(settings: Settings, sink: ProgressSink) -> list[str]:
    """Finish or roll back every interrupted update; returns the names of containers it touched."""
    journal = Journal(settings.updater_state_dir)
    if not journal.entries():
        sink(INFO, "✅ Nothing to recover")
        return []
    engine = DockerEngine.from_env()
    try:
        return recover(engine, journal, sink)
    finally:
        engine.close()
