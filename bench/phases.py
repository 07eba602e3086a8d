"""Where an updater job's time goes, read from the millisecond timestamps of its log."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

# Each phase ends at the first log line starting with its mark; "commit" ends at the job's last line and
# "reply" when POST /update answers. "queue" runs from the POST to the job's first line.
PHASES = ("queue", "inspect", "pull", "prepare", "swap", "health gate", "commit", "reply")
PHASE_ENDS = ("🚀 Job", "📥 Pulling", "✅ Pulled", "⏹️ Stopping", "🩺 Checking health", "💚 New container")


def job_phases(log: list[dict[str, Any]], posted: float | None = None,
               answered: float | None = None) -> dict[str, float]:
    """Seconds per phase; {} when a mark is missing (a failed job, or the log's wording changed)."""
    bounds: list[float | None] = [posted]
    for mark in PHASE_ENDS:
        line = next((e for e in log if str(e.get("message", "")).startswith(mark)), None)
        if line is None:
            return {}
        bounds.append(_when(line))
    bounds += [_when(log[-1]), answered]
    return {name: round(end - start, 4) for name, (start, end) in zip(PHASES, itertools.pairwise(bounds), strict=True)
            if start is not None and end is not None}


def _when(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["time"])).timestamp()


def mean_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    runs = [r for r in runs if r]
    if not runs:
        return {}
    return {name: round(sum(r.get(name, 0.0) for r in runs) / len(runs), 4) for name in runs[0]}
