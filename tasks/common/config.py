"""Where things live: one home folder holds the warehouse, the lake, models, reports and GX.

Settings read from the environment live in ``tasks.common.settings``; this module only asks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

DEFAULT_HOME = "warehouse"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UserInputError(ValueError):
    """Bad input from the user: printed as one line by the CLI, never a traceback.

    ``exit_code`` is the CLI's exit status for this kind of failure (README, "Exit codes"):
    1 unexpected error, 2 usage, 3 data refused by validation, 4 warehouse or night held by
    another run, 5 nothing to do. Subclasses set their own."""

    exit_code: int = 1


class DataRefusedError(UserInputError):
    """Validation refused the data (a table-level expectation, or a guard rail under --strict)."""

    exit_code = 3


class NothingToDoError(UserInputError):
    """The command had nothing to do (no files for the day, a report for a night that never ran)."""

    exit_code = 5


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> Home:
        """``--home`` > ``CLICKREC_HOME`` > ``./warehouse``."""
        from tasks.common.settings import get_settings

        settings = get_settings()  # validated on every resolve: a bad CLICKREC_* value fails here, named
        raw = home or settings.home or DEFAULT_HOME
        return cls(Path(raw).expanduser().resolve())

    @property
    def db(self) -> Path:
        return self.root / "clickrec.duckdb"

    @property
    def published_db(self) -> Path:
        return self.root / "published.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def clicks_lake(self) -> Path:
        return self.lake / "clicks"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def gx(self) -> Path:
        return self.root / "gx"

    @property
    def tuned(self) -> Path:
        """Model settings chosen by ``clickrec tune``, one TOML per source (``tasks.common.night``)."""
        return self.root / "tuned"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def inside(self, path: Path) -> Path:
        """``path`` resolved, refused when it would escape the home folder (e.g. ``../`` tricks)."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise UserInputError(f"{path}: path escapes the home folder {self.root}")
        return resolved

    def ensure(self) -> Home:
        for p in (self.root, self.lake, self.clicks_lake, self.models, self.reports, self.tmp):
            p.mkdir(parents=True, exist_ok=True)
        return self


def lock_wait_seconds() -> float:
    """The one wait for anything held by another run (the warehouse lock, DuckDB's file lock,
    validation's history ATTACH): ``CLICKREC_LOCK_WAIT_SECONDS`` (``tasks.common.settings``)."""
    from tasks.common.settings import get_settings

    return get_settings().lock_wait_seconds


def parse_day(text: str | date, what: str = "--date") -> date:
    """A calendar day from ``YYYY-MM-DD`` only: anything else (paths, ``..``, times) is refused."""
    if isinstance(text, date):
        return text
    if not isinstance(text, str) or not _DATE_RE.match(text):
        raise UserInputError(f"{what} {text!r}: expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UserInputError(f"{what} {text!r}: {exc}") from None
