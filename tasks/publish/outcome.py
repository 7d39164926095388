"""The night's outcome as the nightly flow returns it (and the CLI prints and ``--json`` writes)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

MODEL_FIELDS = ("model", "version", "train_seconds", "metrics")


class StageClock:
    """Seconds per stage of a night, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start


def night_notes(results: list[dict[str, Any]]) -> list[str]:
    """Every model's notes (refused warm starts, champions not re-scored, ...), once each, sorted."""
    return sorted({n for r in results for n in r.get("notes", [])})


def night_outcome(run_id: str, day: date, results: list[dict[str, Any]], decisions: list[dict[str, str]],
                  stage_seconds: dict[str, float], report: Path | None, retention: dict[str, Any]) -> dict[str, Any]:
    """What a night did: its decisions, time per stage, report, notes, what retention removed, and per model
    its version, training time and P4 figures."""
    return {
        "run_id": run_id, "run_date": str(day), "decisions": decisions, "stage_seconds": stage_seconds,
        "report": str(report) if report else None, "notes": night_notes(results), "retention": retention,
        "models": [{k: r[k] for k in MODEL_FIELDS} for r in results],
    }
