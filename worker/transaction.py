"""The update transaction: pull, journal, stop, swap, start, health gate, commit or roll back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpdateResult:
    container_name: str
    container_id: str
    old_image: str
    new_image: str
    updated: bool  # False when the image was already current
    message: str
