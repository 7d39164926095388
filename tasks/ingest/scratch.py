"""Scratch DuckDB files of ingest runs: one per staged file, one for the run's validation.

Every scratch file is named ``tmp/stage-<run>-<8 hex>.duckdb`` (with its ``.wal`` and, for a staged
file, its ``.lake`` folder of Parquet partitions), so a run's leftovers are recognised by name and
removed once no live process holds that run (a killed run's).
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

from tasks.common.config import Home
from tasks.common.locks import run_is_alive

_SCRATCH_RE = re.compile(r"^stage-(?P<run>.+)-[0-9a-f]{8}\.(duckdb|duckdb\.wal|lake)$")


def new_scratch(home: Home, run_id: str) -> Path:
    """A fresh scratch database path for run ``run_id`` (nothing is created)."""
    home.tmp.mkdir(parents=True, exist_ok=True)
    return home.tmp / f"stage-{run_id}-{uuid.uuid4().hex[:8]}.duckdb"


def remove_scratch(scratch: Path) -> None:
    """The scratch database, its WAL and its staged Parquet folder, whichever exist."""
    for p in (scratch, scratch.with_suffix(".duckdb.wal"), scratch.with_suffix(".lake")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def cleanup_dead_scratch(home: Home) -> list[str]:
    """Remove scratch files of runs that no live process holds (a killed run's leftovers)."""
    removed = []
    for p in sorted(home.tmp.glob("stage-*")) if home.tmp.exists() else []:
        m = _SCRATCH_RE.match(p.name)
        if m and not run_is_alive(home, m.group("run")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed
