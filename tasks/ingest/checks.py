"""Bridge from ingest to the Great Expectations suite: rules from the profile, history from the warehouse."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date
from pathlib import Path

from filelock import FileLock

from tasks.common.config import Home, lock_wait_seconds
from tasks.common.profiles import SourceProfile
from tasks.ingest.files import WAREHOUSE_WRITE_LOCK, ValidationRefusedError

# GX's file-backed context (suites, checkpoints, Data Docs under home/gx) is not thread-safe:
# concurrent runs in one process corrupt its JSON stores. Staging stays parallel; GX runs one at a time.
_GX_LOCK = threading.Lock()


def validate_scratch(
    scratch: Path, run_id: str, batch: str, profile: SourceProfile, home: Home,
    day: date | tuple[date, date] | None = None, whole_day: bool = False,
) -> list[dict]:
    """Validate ``staging.batch`` in a scratch database; a table-level failure fails the file.

    The day-volume expectation (rows of a day against the trailing mean) is meaningful only when this
    file holds the whole day: a ``--date`` run with one landing file for the day (``whole_day``). For
    a file that spans many days (its first and last days are partial by nature), or one of several
    files that share a day, it is recorded with open bounds.
    """
    from tasks.ingest.validate import ValidationRules, validate_batch

    required = ["item_id", "ts"] + (["session_id"] if profile.has_session else ["user_id"])
    day_from, day_to = day if isinstance(day, tuple) else (day, day)
    rules = ValidationRules(required=tuple(required), day=day_from, day_to=day_to, event_types=profile.event_types)
    if not whole_day:
        rules = replace(rules, min_day_ratio=0.0, max_day_ratio=float("inf"))
    # The history comes from the working database, attached read-only: not while this process writes it.
    # GX's JSON stores under home/gx are shared by every process on this home: one validation at a time.
    gx_lock = FileLock(home.root / "locks" / "gx.lock", timeout=lock_wait_seconds())
    (home.root / "locks").mkdir(parents=True, exist_ok=True)
    with WAREHOUSE_WRITE_LOCK, _GX_LOCK, gx_lock:
        outcome = validate_batch(scratch, run_id=run_id, batch=batch, rules=rules, gx_dir=home.gx,
                                 history_db=home.db if home.db.exists() else None)
    if not outcome.ok:
        raise ValidationRefusedError(f"{batch}: validation failed: {'; '.join(outcome.failures)}")
    return outcome.results
