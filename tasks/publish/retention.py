"""Retention: what the home folder keeps, so that it stops growing night after night.

Part of the publish stage because its one hard rule is a publish rule: a champion is always kept.
Run by the nightly flow at its end (after publishing), one rule per folder:

| folder | kept | clock |
|---|---|---|
| ``nights/D/`` (the night's bundle and candidate files) | the last ``nights`` nights | night dates, counted back from the newest |
| ``models/<label>/<version>/`` (checkpoints) | every champion (the last published version of its model), whatever its age; versions recorded by one of the last ``nights`` nights | night dates |
| checkpoints no night recorded (a crashed run's) | ``nights`` days | when they were written |
| GX validation results and their Data Docs pages | ``gx_days`` days | when the validation ran (GX's run time) |
| Prefect's result storage (the training cache) | ``prefect_storage_days`` days (the cache expires after 7) | when the result was written; only inside the home folder |

Night dates and wall-clock days are different clocks on purpose: a backfill of 2014 data run today
keeps its nights by their dates, while GX results and cache files age by when they were written.
``published.duckdb`` keeps its own ``retention_days`` nights (``tasks.publish.published``). Anything
retention does not recognise (a folder name that is no date, a path outside the home) is left alone.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tasks.common.config import Home
from tasks.common.models import TRAINING_CACHE_DAYS
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import session
from tasks.publish.decision import Status

RESULT_CACHE_DAYS = TRAINING_CACHE_DAYS  # older cached training results are never read
_GX_RUN_TIME = "%Y%m%dT%H%M%S.%fZ"  # GX's RunIdentifier folder names, e.g. 20261202T192210.040807Z


@dataclass(frozen=True)
class RetentionPolicy:
    """How much each folder keeps (see the module's table)."""

    nights: int = 30
    gx_days: int = 30
    prefect_storage_days: int = RESULT_CACHE_DAYS

    def __post_init__(self) -> None:
        for name in ("nights", "gx_days", "prefect_storage_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"retention {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Pruned:
    """What one pass removed, per folder: paths and bytes."""

    removed: dict[str, list[str]] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, folder: str, path: Path) -> None:
        size = _size(path)
        _remove(path)
        self.removed.setdefault(folder, []).append(str(path))
        self.bytes[folder] = self.bytes.get(folder, 0) + size

    def to_dict(self) -> dict:
        return {folder: {"removed": len(paths), "mb": round(self.bytes.get(folder, 0) / 2**20, 2)}
                for folder, paths in self.removed.items()} | ({"skipped": self.skipped} if self.skipped else {})


def _size(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    total = 0
    for f in files:
        with contextlib.suppress(OSError):
            total += f.stat().st_size
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _written(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _inside(home: Home, path: Path) -> bool:
    try:
        home.inside(path)
    except ValueError:
        return False
    return True


def _checkpoints_known(home: Home) -> tuple[list[tuple[str, date, bool]], date | None]:
    if not home.db.exists():
        return [], None
    with session(home, read_only=True) as con:
        rows = con.execute(sql("ops/retention_checkpoints"), {"published": Status.PUBLISHED.value}).fetchall()
        [(newest,)] = con.execute(sql("ops/latest_run_date")).fetchall()
    return rows, newest


def _prune_nights(home: Home, keep_from: date | None, out: Pruned) -> None:
    folder = home.root / "nights"
    if keep_from is None or not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        day = _day(entry.name)
        if entry.is_dir() and day is not None and day < keep_from:
            out.add("nights", entry)


def _prune_checkpoints(home: Home, known: Iterable[tuple[str, date, bool]], keep_from: date | None,
                       orphan_before: datetime, out: Pruned) -> None:
    recorded: set[Path] = set()
    for path, run_date, champion in known:
        p = Path(path)
        recorded.add(p.resolve())
        if champion or keep_from is None or run_date >= keep_from:
            continue
        if p.is_dir() and _inside(home, p) and home.models in p.resolve().parents:
            out.add("models", p)
    if not home.models.is_dir():
        return
    for label in sorted(home.models.iterdir()):
        if not label.is_dir():
            continue
        for version in sorted(label.iterdir()):
            if version.is_dir() and version.resolve() not in recorded and _written(version) < orphan_before:
                out.add("models", version)


def _gx_result_stores(home: Home) -> list[Path]:
    base = home.gx / "gx" / "uncommitted"
    return [base / "validations", base / "data_docs" / "local_site" / "validations"]


def _prune_gx(home: Home, before: datetime, out: Pruned) -> None:
    """``<store>/<suite>/<run name>/<run time>/...``: run-time folders older than ``before`` go, and
    a run name's folder once it has none left."""
    for store in _gx_result_stores(home):
        if not store.is_dir():
            continue
        for suite in sorted(p for p in store.iterdir() if p.is_dir()):
            for run in sorted(p for p in suite.iterdir() if p.is_dir()):
                for run_time in sorted(p for p in run.iterdir() if p.is_dir()):
                    try:
                        ran = datetime.strptime(run_time.name, _GX_RUN_TIME).replace(tzinfo=UTC)
                    except ValueError:
                        continue
                    if ran < before:
                        out.add("gx", run_time)
                if not any(run.iterdir()):
                    run.rmdir()


def _prune_prefect_storage(home: Home, storage: Path | None, before: datetime, out: Pruned) -> None:
    if storage is None or not storage.is_dir():
        return
    if not _inside(home, storage):
        out.skipped.append(f"prefect storage {storage}: outside the home folder, left alone")
        return
    for f in sorted(p for p in storage.rglob("*") if p.is_file() and not p.is_symlink()):
        if _written(f) < before:
            out.add("prefect", f)


def prefect_storage_path() -> Path:
    """Where Prefect persists task results (``PREFECT_HOME/storage`` unless configured)."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path).expanduser()


def prune(home: Home, policy: RetentionPolicy, *, now: datetime | None = None,
          prefect_storage: Path | None = None) -> Pruned:
    """Apply ``policy`` to ``home`` (see the module's table); returns what was removed."""
    now = now or datetime.now(UTC)
    out = Pruned()
    known, newest = _checkpoints_known(home)
    night_folders = [d for d in (_day(p.name) for p in (home.root / "nights").glob("*")) if d is not None]
    newest = max([d for d in (newest, *night_folders) if d is not None], default=None)
    keep_from = newest - timedelta(days=policy.nights - 1) if newest is not None else None
    _prune_nights(home, keep_from, out)
    _prune_checkpoints(home, known, keep_from, now - timedelta(days=policy.nights), out)
    _prune_gx(home, now - timedelta(days=policy.gx_days), out)
    _prune_prefect_storage(home, prefect_storage, now - timedelta(days=policy.prefect_storage_days), out)
    return out
