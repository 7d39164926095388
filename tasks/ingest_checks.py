"""Bridge from ingest to the Great Expectations suite: rules from the profile, history from the warehouse."""

from __future__ import annotations

from pathlib import Path

from tasks.config import Home
from tasks.ingest import IngestError
from tasks.profiles import SourceProfile


def validate_scratch(scratch: Path, run_id: str, batch: str, profile: SourceProfile, home: Home) -> list[dict]:
    """Validate ``staging.batch`` in a scratch database; a table-level failure fails the file."""
    from tasks.validate import ValidationRules, validate_batch

    required = ["item_id", "ts"] + (["session_id"] if profile.has_session else ["user_id"])
    rules = ValidationRules(required=tuple(required))
    outcome = validate_batch(scratch, run_id=run_id, batch=batch, rules=rules, gx_dir=home.gx,
                             history_db=home.db if home.db.exists() else None)
    if not outcome.ok:
        raise IngestError(f"{batch}: validation failed: {'; '.join(outcome.failures)}")
    return outcome.results
