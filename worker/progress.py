"""The sink an update reports its progress through: a level and a message."""

from collections.abc import Callable
from datetime import datetime

INFO = "INFO"
WARNING = "WARNING"
ERROR = "ERROR"

ProgressSink = Callable[[str, str], None]


def format_line(level: str, message: str, when: datetime | None = None) -> str:
    """The seed's log line format: `2026-02-06 19:32:15 - INFO - message`."""
    stamp = (when or datetime.now()).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} - {level} - {message}"


def print_sink(level: str, message: str) -> None:
    print(format_line(level, message), flush=True)


def null_sink(level: str, message: str) -> None:
    return None
