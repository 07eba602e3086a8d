"""Keeping secrets out of what the updater reports: a container's env values, passwords in URLs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from worker.progress import ProgressSink

MASK = "***"
# Shorter values (ports, flags, `true`) are too common in messages to mask, and too short to be secrets.
MIN_SECRET_LENGTH = 6
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def redact_url(url: str) -> str:
    """`redis://:pw@host/0` → `redis://:***@host/0`."""
    return _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", url)


class Redactor:
    """Masks given secret values in text, in progress lines and in exceptions (and their causes)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    @classmethod
    def for_container(cls, inspect: dict[str, Any] | None, public: Iterable[str]) -> Redactor:
        """Every env value of the container, except those that are public anyway (its name, its images).

        The container's own output (the last log line of a container that exits, a healthcheck's output)
        ends up in job errors, and a misbehaving app may print its environment."""
        env = ((inspect or {}).get("Config") or {}).get("Env") or []
        shown = " ".join(public)
        return cls(value for value in (entry.partition("=")[2] for entry in env) if value not in shown)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def sink(self, sink: ProgressSink) -> ProgressSink:
        if not self.secrets:
            return sink

        def redacted(level: str, message: str) -> None:
            sink(level, self(message))

        return redacted

    def scrub(self, exc: BaseException) -> None:
        """Mask secrets in `exc`'s message and in those of the exceptions it was raised from."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen and self.secrets:
            seen.add(id(current))
            message = str(current)
            if self(message) != message:
                current.args = (self(message),)
            current = current.__cause__ or current.__context__
