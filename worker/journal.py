"""The durable record of an update in flight: written before any destructive step, read by recovery."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import UpdaterError

PREPARED = "prepared"  # nothing destroyed yet, or the old containers stopped/renamed
COMMITTING = "committing"  # the new containers passed the health gate; only cleanup remains


@dataclass
class Member:
    """One container of the transaction: the target or a `network_mode: container:` dependant."""

    name: str
    old_id: str
    old_image: str
    backup_name: str
    restart_policy: dict[str, Any]
    new_id: str | None = None
    was_running: bool = True  # a rollback starts only what ran before


@dataclass
class Entry:
    container_name: str
    new_image: str
    target: Member
    dependants: list[Member] = field(default_factory=list)
    phase: str = PREPARED

    @property
    def members(self) -> list[Member]:
        return [self.target, *self.dependants]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            container_name=raw["container_name"],
            new_image=raw["new_image"],
            target=Member(**raw["target"]),
            dependants=[Member(**d) for d in raw["dependants"]],
            phase=raw["phase"],
        )


class Journal:
    """One JSON file per container under `directory`, replaced atomically and fsynced.

    A running update holds an flock on `<name>.lock`; the kernel drops it when the process dies, so
    recovery can tell an interrupted update from one a live process (any worker on this host) is running.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def hold(self, container_name: str) -> Iterator[bool]:
        """Try to own `container_name`'s entry exclusively; yields False when a live process owns it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{container_name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UpdaterError(f"Cannot use the update journal in {self.directory}: {exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _path(self, container_name: str) -> Path:
        return self.directory / f"{container_name}.json"

    def write(self, entry: Entry) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self._path(entry.container_name)
            tmp = path.with_suffix(".tmp")
            with tmp.open("w") as handle:
                json.dump(asdict(entry), handle)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise UpdaterError(f"Cannot write the update journal in {self.directory}: {exc}") from exc

    def get(self, container_name: str) -> Entry | None:
        path = self._path(container_name)
        if not path.exists():
            return None
        return Entry.from_dict(json.loads(path.read_text()))

    def entries(self) -> list[Entry]:
        if not self.directory.is_dir():
            return []
        return [Entry.from_dict(json.loads(p.read_text())) for p in sorted(self.directory.glob("*.json"))]

    def orphans(self) -> list[Entry]:
        """Entries no live process holds: updates whose process died (a worker or its work horse killed)."""
        orphaned = []
        for entry in self.entries():
            with self.hold(entry.container_name) as owned:
                if owned:
                    orphaned.append(entry)
        return orphaned

    def delete(self, container_name: str) -> None:
        self._path(container_name).unlink(missing_ok=True)
