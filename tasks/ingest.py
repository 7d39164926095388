"""Ingest: landing files -> validated canonical events in the lake and ``raw.clicks``.

Each file is staged, typed and validated in its own *scratch* DuckDB file (``tmp/stage-*.duckdb``),
so files can be prepared in parallel (threads, Dask workers) without touching the working database.
Only the short final commit takes the warehouse's single writer slot: it replaces what the run
replaces (a day with ``--date``, else these files' earlier rows) in one transaction, then renames
the run's Parquet files into the lake. Nothing reaches the lake or ``raw.clicks`` before every file
of the run has passed validation, so a failing run leaves no half-written partition.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from tasks.config import DataRefusedError, Home, UserInputError
from tasks.faults import crash_point
from tasks.profiles import CANONICAL_FIELDS, SourceProfile
from tasks.sqlfiles import sql
from tasks.warehouse import connect, scratch_config

MAX_LINE_BYTES = 2 * 1024 * 1024
# One writer on the warehouse at a time inside this process (threads of a backfill); across
# processes DuckDB's own file lock refuses a second writer and we report it.
WAREHOUSE_WRITE_LOCK = threading.Lock()


class IngestError(UserInputError):
    """A file or run that cannot be ingested; one line naming file, row and problem."""


class ValidationRefusedError(IngestError, DataRefusedError):
    """A table-level expectation (or a guard rail under ``--strict``) refused a file: exit code 3."""


@dataclass
class FileReport:
    source_file: str
    path: str
    sha256: str
    size_bytes: int
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_other_days: int = 0
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    days: list[str] = field(default_factory=list)
    scratch: str = ""
    validation: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per step, for the benchmark

    def check_invariant(self) -> None:
        total = self.rows_accepted + self.rows_quarantined + self.rows_duplicate + self.rows_other_days
        if total != self.rows_read:
            raise IngestError(
                f"{self.path}: accounting broken: read {self.rows_read} != accepted {self.rows_accepted} + "
                f"quarantined {self.rows_quarantined} + duplicates {self.rows_duplicate} + other days {self.rows_other_days}"
            )


@dataclass
class IngestReport:
    run_id: str
    profile: str
    day: str | None
    files: list[FileReport]
    days_written: list[str]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_other_days")
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "day": self.day,
            "days_written": self.days_written,
            "totals": self.totals,
            "files": [{k: v for k, v in asdict(f).items() if k != "scratch"} for f in self.files],
        }


Days = date | tuple[date, date] | None  # one day (--date), an inclusive range (backfill), or all


def day_span(day: Days) -> dict[str, date | None]:
    """SQL parameters of a run's day scope."""
    if isinstance(day, tuple):
        return {"day_from": day[0], "day_to": day[1]}
    return {"day_from": day, "day_to": day}


def day_label(day: Days) -> str | None:
    if isinstance(day, tuple):
        return f"{day[0]}..{day[1]}" if day[0] != day[1] else str(day[0])
    return str(day) if day else None


def new_run_id(kind: str = "ingest") -> str:
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def list_input_files(path: Path) -> list[Path]:
    """A file, or the data files of a folder (sorted; hidden files and sub-folders skipped)."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise IngestError(f"{path}: folder holds no files to ingest")
    return files


def file_key(source_file: str) -> str:
    """A safe file-name stem for this source's Parquet files (no path separators, no dots-only)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source_file).strip(".") or "file"
    return f"{stem[:80]}-{hashlib.sha1(source_file.encode()).hexdigest()[:8]}"


def sha256_of(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _compression(path: Path) -> str:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return "gzip"
    if path.suffix == ".gz":
        raise IngestError(f"{path}: named .gz but is not gzip data")
    return "none"


def _first_line(path: Path, compression: str, limit: int = 1 << 20) -> str:
    import gzip

    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.readline(limit)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path}: cannot read ({exc})") from None
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: line 1: header is not valid UTF-8") from None


def _csv_columns(path: Path, profile: SourceProfile, compression: str) -> dict[str, str]:
    """Positional column names for read_csv: canonical role, or ``_skip_N`` for unmapped columns."""
    role_of = {src: canon for canon, src in profile.fields.items()}
    if profile.header:
        header = _first_line(path, compression)
        if not header:
            raise IngestError(f"{path}: file is empty")
        names = [h.strip().strip('"') for h in header.split(profile.delimiter)]
        missing = [src for src in profile.fields.values() if src not in names]
        if missing:
            raise IngestError(
                f"{path}: line 1: missing required column(s) {missing} (found {names[:8]}; "
                f"delimiter {profile.delimiter!r} per profile {profile.name!r})"
            )
    else:
        names = list(profile.columns)
    return {role_of.get(n, f"_skip_{i}"): "VARCHAR" for i, n in enumerate(names)}


def _json_pointer(key: str | None) -> str | None:
    if key is None:
        return None
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _friendly(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text)[:300]


def stage_file(
    path: Path,
    profile: SourceProfile,
    home: Home,
    run_id: str,
    day: Days,
    validate: Callable[..., list[dict]] | None = None,
    whole_day: bool = False,
) -> FileReport:
    """Stage, type and validate one file into its own scratch database; returns its accounting.

    ``whole_day``: this file is the run's only file for ``day`` (enables the day-volume check)."""
    path = path.resolve()
    t0 = time.perf_counter()
    sha, size = sha256_of(path)
    if size == 0:
        raise IngestError(f"{path}: file is empty (0 bytes)")
    compression = _compression(path)
    report = FileReport(source_file=path.name, path=str(path), sha256=sha, size_bytes=size)
    report.seconds["checksum"] = round(time.perf_counter() - t0, 3)
    scratch = home.tmp / f"stage-{run_id}-{uuid.uuid4().hex[:8]}.duckdb"
    report.scratch = str(scratch)
    try:
        _stage_into(scratch, path, profile, compression, home, run_id, day, report, validate, whole_day)
    except BaseException:
        cleanup_scratch([report])
        raise
    if sha256_of(path)[0] != sha:
        cleanup_scratch([report])
        raise IngestError(f"{path}: file changed while being read (sha256 differs); refusing it")
    return report


@contextlib.contextmanager
def _timed(report: FileReport, step: str):
    t0 = time.perf_counter()
    yield
    report.seconds[step] = round(report.seconds.get(step, 0.0) + time.perf_counter() - t0, 3)


def _stage_into(
    scratch: Path,
    path: Path,
    profile: SourceProfile,
    compression: str,
    home: Home,
    run_id: str,
    day: Days,
    report: FileReport,
    validate: Callable[..., list[dict]] | None,
    whole_day: bool,
) -> None:
    con = duckdb.connect(str(scratch), config=scratch_config())
    try:
        con.execute(sql("warehouse/schema"))
        con.execute(sql("ingest/stage_text_table"))
        params = {"path": str(path), "compression": compression, "max_line_size": MAX_LINE_BYTES}
        try:
            with _timed(report, "read"):
                if profile.format == "csv":
                    columns = _csv_columns(path, profile, compression)
                    con.execute(
                        sql("ingest/stage_csv"),
                        params
                        | {"delim": profile.delimiter, "quote": profile.quote, "header": profile.header,
                           "columns": columns},
                    )
                    con.execute(sql("ingest/stage_text_csv"), {"header_lines": 1 if profile.header else 0})
                elif profile.format == "jsonl":
                    con.execute(sql("ingest/stage_jsonl"), params)
                    pointers = {f"p_{f}": _json_pointer(profile.fields.get(f)) for f in CANONICAL_FIELDS}
                    con.execute(sql("ingest/stage_text_jsonl"), pointers)
                else:
                    con.execute(sql("ingest/stage_rejects_empty"))
                    pointers = {f"p_{f}": _json_pointer(profile.fields.get(f)) for f in CANONICAL_FIELDS}
                    con.execute(sql("ingest/stage_text_parquet"), {"path": str(path)} | pointers)
        except duckdb.Error as exc:
            raise IngestError(f"{path}: cannot read as {profile.format} ({_friendly(exc)})") from None
        [(n_bad, n_good)] = con.execute(sql("ingest/count_bad_lines")).fetchall()
        report.rows_read = n_bad + n_good
        if report.rows_read == 0:
            raise IngestError(f"{path}: no data rows (empty or header only)")
        if n_bad == report.rows_read:
            [(line, message)] = con.execute(sql("ingest/first_reject")).fetchall()
            raise IngestError(
                f"{path}: line {line}: no line could be read with profile {profile.name!r} "
                f"(delimiter {profile.delimiter!r}?): {message}"
            )
        con.execute(sql("ingest/quarantine_bad_lines"), {"source_file": path.name, "run_id": run_id})
        with _timed(report, "type"):
            con.execute(
                sql("ingest/typed_batch"),
                {
                    "source_file": path.name,
                    "default_event_type": profile.defaults.get("event_type", "click"),
                    "ts_kind": profile.ts_kind,
                    "ts_format": profile.ts_format or "%Y-%m-%d %H:%M:%S",
                    "timezone": profile.timezone,
                    "dedupe": profile.dedupe,
                },
            )
    finally:
        con.close()
    # Row- and table-level expectations (Great Expectations) on the scratch database.
    with _timed(report, "validate"):
        report.validation = (validate or _default_validate)(scratch, run_id, path.name, profile, home, day, whole_day)
    con = duckdb.connect(str(scratch), config=scratch_config())
    try:
        con.execute(sql("ingest/quarantine_bad_lines_move"))
        [counts] = con.execute(sql("ingest/file_counts"), day_span(day)).fetchall()
        dup, rejected, other, accepted, _batch_rows, min_ts, max_ts = counts
        report.rows_duplicate, report.rows_other_days, report.rows_accepted = dup, other, accepted
        report.rows_quarantined = n_bad + rejected
        report.min_ts, report.max_ts = min_ts, max_ts
        report.check_invariant()
        report.days = [str(d) for (d,) in con.execute(sql("ingest/accepted_days"), day_span(day)).fetchall()]
        if accepted:
            with _timed(report, "write_lake"):
                con.execute(
                    sql("ingest/write_lake"),
                    {"run_id": run_id, "ingested_at": datetime.now(UTC).replace(tzinfo=None), **day_span(day),
                     "out": str(scratch.with_suffix(".lake"))},
                )
    finally:
        con.close()


def _default_validate(
    scratch: Path, run_id: str, batch: str, profile: SourceProfile, home: Home, day: Days, whole_day: bool
) -> list[dict]:
    from tasks.ingest_checks import validate_scratch

    return validate_scratch(scratch, run_id, batch, profile, home, day, whole_day)


def commit_run(home: Home, run_id: str, profile: SourceProfile, day: Days, files: Sequence[FileReport]) -> list[str]:
    """Make the run visible: one DuckDB transaction, then atomic renames into the lake."""
    source_files = [f.source_file for f in files]
    with WAREHOUSE_WRITE_LOCK:
        con = connect(home)
        try:
            con.begin()
            con.execute(sql("ingest/commit_run"), day_span(day) | {"source_files": source_files})
            for f in files:
                parts = sorted(str(p) for p in Path(f.scratch).with_suffix(".lake").glob("event_date=*/*.parquet"))
                if parts:
                    con.execute(sql("ingest/insert_accepted"), {"files": parts})
                con.execute(sql("ingest/attach_scratch"), {"path": f.scratch})
                try:
                    con.execute(sql("ingest/copy_quarantine"), {"source_file": f.source_file})
                    con.execute(sql("ingest/copy_scratch_rows"))
                finally:
                    con.execute(sql("ingest/detach_scratch"))
                con.execute(
                    sql("ingest/record_file"),
                    {
                        "run_id": run_id, "source_file": f.source_file, "path": f.path, "profile": profile.name,
                        **day_span(day), "sha256": f.sha256, "size_bytes": f.size_bytes, "rows_read": f.rows_read,
                        "rows_accepted": f.rows_accepted, "rows_quarantined": f.rows_quarantined,
                        "rows_duplicate": f.rows_duplicate, "rows_other_days": f.rows_other_days,
                        "min_ts": f.min_ts, "max_ts": f.max_ts,
                    },
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()
        crash_point("ingest-after-commit")
        return _publish_lake(home, day, files)


def _publish_lake(home: Home, day: Days, files: Sequence[FileReport]) -> list[str]:
    """Rename each file's new partition files into place, then drop what they replace."""
    lake = home.clicks_lake
    keys = {file_key(f.source_file) for f in files}
    touched: set[str] = set()
    placed: set[Path] = set()
    for f in files:
        out = Path(f.scratch).with_suffix(".lake")
        if not out.exists():
            continue
        for part in sorted(out.glob("event_date=*")):
            target_dir = home.inside(lake / part.name)
            target_dir.mkdir(parents=True, exist_ok=True)
            for i, pq in enumerate(sorted(part.glob("*.parquet"))):
                target = target_dir / f"{file_key(f.source_file)}-{i}.parquet"
                os.replace(pq, target)
                placed.add(target)
            touched.add(part.name)
    # Stale files: with a day scope, everything else in those days; otherwise these sources' old files.
    span = day_span(day)
    scope = sorted(lake.glob("event_date=*"))
    if span["day_from"] is not None:
        scope = [p for p in scope if span["day_from"].isoformat() <= p.name.split("=", 1)[1] <= span["day_to"].isoformat()]
    for part in scope:
        for pq in part.glob("*.parquet"):
            if pq in placed:
                continue
            if day is not None or pq.name.rsplit("-", 1)[0] in keys:
                pq.unlink()
        if part.exists() and not any(part.iterdir()):
            part.rmdir()
    return sorted(p.split("=", 1)[1] for p in touched)


def cleanup_scratch(files: Sequence[FileReport]) -> None:
    for f in files:
        if not f.scratch:
            continue
        scratch = Path(f.scratch)
        for p in (scratch, scratch.with_suffix(".duckdb.wal"), scratch.with_suffix(".lake")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()


def ingest(
    home: Home,
    profile: SourceProfile,
    paths: Sequence[Path],
    day: Days = None,
    run_id: str | None = None,
    validate: Callable[..., list[dict]] | None = None,
    on_file: Callable[[FileReport], None] | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files) with ``profile``; ``day`` (a date or an inclusive ``(start, end)``)
    restricts the run to, and replaces, those days whole."""
    home.ensure()
    run_id = run_id or new_run_id()
    reports: list[FileReport] = []
    try:
        names = [p.name for p in paths]
        if len(set(names)) != len(names):
            raise IngestError("two input files share a name; file names are the lineage key (source_file)")
        for p in paths:
            whole_day = isinstance(day, date) and len(paths) == 1
            reports.append(stage_file(Path(p), profile, home, run_id, day, validate, whole_day))
            if on_file:
                on_file(reports[-1])
        days = commit_run(home, run_id, profile, day, reports)
    finally:
        cleanup_scratch(reports)
    return IngestReport(run_id=run_id, profile=profile.name, day=day_label(day), files=reports, days_written=days)
