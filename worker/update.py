"""Runs one update or a recovery with the real adapters built from settings."""

from __future__ import annotations

from worker.progress import ProgressSink
from worker.settings import Settings
from worker.transaction import UpdateResult


def perform_update(name: str, new_image: str | None, settings: Settings, sink: ProgressSink,
                   *, force: bool = False) -> UpdateResult:
    """Update container `name` to `new_image` (None: newest main-<sha>); raises UpdaterError on failure."""
    raise NotImplementedError


def recover_all(settings: Settings, sink: ProgressSink) -> list[str]:
    """Finish or roll back every interrupted update; returns the names of containers it touched."""
    raise NotImplementedError
