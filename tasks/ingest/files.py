"""Ingest: landing files -> validated canonical events in the lake and ``raw.clicks``.

Every physical line of a landing file is accounted for: ``tasks.ingest.read`` streams the file's
lines (split on bytes, never by a parser), each line is typed or quarantined alone, and the
invariant ``read = accepted + quarantined + duplicates + filtered + other_days + blank`` is checked
against that physical count for every file.

Each file is staged, typed and validated in its own *scratch* DuckDB file (``tmp/stage-*.duckdb``),
so files can be prepared in parallel (threads, Dask workers) without touching the working database.
The commit holds the warehouse's cross-process lock (``tasks.common.locks.warehouse_lock``) from the
database transaction through the lake publish: one transaction replaces what the run replaces (a
day with ``--date``, else these landing files' earlier rows) and writes the run's manifest
(``ops.lake_files``); then the run's Parquet files are renamed into the lake and the files it
replaces are removed. A crash or a retry at any point is repaired by the next commit of any run
(ingest, backfill, nightly), which first finishes every committed run from its manifest, rebuilding
a lost file from ``raw.clicks``. A retried commit of a committed run only finishes its publish.

A landing file's identity is its resolved path (``file_id``), with its sha256 recorded: the same
file re-ingested replaces its own rows and quarantine; another file of the same name never removes
anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tasks.common.config import DataRefusedError, Home, UserInputError
from tasks.common.faults import crash_point
from tasks.common.locks import WRITE_LOCK, run_alive, run_is_alive, warehouse_lock
from tasks.common.profiles import CANONICAL_FIELDS, SourceProfile
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import connect, scratch_config
from tasks.ingest.read import LineCount, line_reader

MAX_LINE_BYTES = 2 * 1024 * 1024
MAX_LINE_BYTES = 2 * 1024 * 1024
# Kept under its old name for callers in this process; the lock lives in tasks.common.locks.
WAREHOUSE_WRITE_LOCK = WRITE_LOCK
_SCRATCH_RE = re.compile(r"^stage-(?P<run>.+)-[0-9a-f]{8}\.(duckdb|duckdb\.wal|lake)$")


class IngestError(UserInputError):
    """A file or run that cannot be ingested; one line naming file, row and problem."""


class ValidationRefusedError(IngestError, DataRefusedError):
    """A table-level expectation (or a guard rail under ``--strict``) refused a file: exit code 3."""


@dataclass
class FileReport:
    source_file: str
    path: str  # resolved path: the file's identity, with sha256
    sha256: str
    size_bytes: int
    file_id: str = ""
    link_path: str | None = None  # the symlink it was given as, if any
    rows_read: int = 0  # data lines physically in the file (Parquet: rows in its metadata)
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_filtered: int = 0
    rows_other_days: int = 0
    rows_blank: int = 0
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    days: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # guard rails passed (shares over the profile's limits)
    scratch: str = ""
    validation: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per step, for the benchmark

    def check_invariant(self) -> None:
        total = (self.rows_accepted + self.rows_quarantined + self.rows_duplicate + self.rows_filtered
                 + self.rows_other_days + self.rows_blank)
        if total != self.rows_read:
            raise IngestError(
                f"{self.path}: accounting broken: {self.rows_read} data lines in the file != accepted "
                f"{self.rows_accepted} + quarantined {self.rows_quarantined} + duplicates {self.rows_duplicate} + "
                f"filtered {self.rows_filtered} + other days {self.rows_other_days} + blank {self.rows_blank}"
            )


COUNT_KEYS = ("rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_filtered",
              "rows_other_days", "rows_blank")


@dataclass
class IngestReport:
    run_id: str
    profile: str
    day: str | None
    files: list[FileReport]
    days_written: list[str]

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(f, k) for f in self.files) for k in COUNT_KEYS}

    @property
    def flags(self) -> list[str]:
        return [flag for f in self.files for flag in f.flags]

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "day": self.day,
            "days_written": self.days_written,
            "totals": self.totals,
            "flags": self.flags,
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


@dataclass(frozen=True)
class LandingFile:
    """One input of a run: the path it was given as and the file it is (symlinks resolved)."""

    given: Path
    resolved: Path

    @property
    def link_path(self) -> str | None:
        return str(self.given.absolute()) if self.given.is_symlink() else None


def file_id_of(resolved: Path) -> str:
    """The lineage key of a landing file: its resolved path, hashed (never the bare name)."""
    return hashlib.sha1(str(resolved).encode()).hexdigest()[:16]


def resolve_inputs(paths: Sequence[Path], allow_outside_links: bool = False) -> list[LandingFile]:
    """Resolve each input (symlinks followed), refusing one file given twice and, unless allowed, a
    symlink that leads outside the folder it sits in (a landing folder should not reach elsewhere)."""
    out: list[LandingFile] = []
    seen: dict[Path, Path] = {}
    for p in paths:
        given = Path(p)
        resolved = given.resolve()
        if given.is_symlink() and not allow_outside_links:
            folder = given.absolute().parent.resolve()
            if folder not in resolved.parents:
                raise IngestError(
                    f"{given}: symlink to {resolved}, outside its landing folder {folder}; refused "
                    "(pass --allow-outside-links to accept it)"
                )
        if resolved in seen:
            raise IngestError(f"{given}: the same file as {seen[resolved]} ({resolved}); a file is ingested once per run")
        seen[resolved] = given
        out.append(LandingFile(given=given, resolved=resolved))
    return out


def _lake_name(source_file: str, file_id: str, run_id: str, i: int) -> str:
    """A lake file name unique per landing file and run, so no rename ever replaces another's file."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source_file).strip(".")[:60] or "file"
    run = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"{stem}-{file_id}-{run}-{i}.parquet"


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
        return raw.decode("utf-8").rstrip("\r\n").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: line 1: header is not valid UTF-8") from None


def _csv_names(path: Path, profile: SourceProfile, compression: str) -> list[str]:
    """Column names of a delimited file: its header (checked against the profile) or the profile's."""
    if not profile.header:
        return list(profile.columns)
    header = _first_line(path, compression)
    if not header:
        raise IngestError(f"{path}: file is empty")
    names = [h.strip().strip('"') for h in header.split(profile.delimiter)]
    wanted = list(profile.fields.values()) + ([_offset_column(profile)] if _offset_column(profile) else [])
    missing = [src for src in wanted if src not in names]
    if missing:
        raise IngestError(
            f"{path}: line 1: missing required column(s) {missing} (found {names[:8]}; "
            f"delimiter {profile.delimiter!r} per profile {profile.name!r})"
        )
    return names


def _offset_column(profile: SourceProfile) -> str | None:
    return getattr(profile, "ts_offset_column", None)


def _roles(profile: SourceProfile) -> dict[str, str]:
    """Canonical role -> source column, including the timestamp's offset column when there is one."""
    roles = dict(profile.fields)
    if _offset_column(profile):
        roles["ts_offset"] = _offset_column(profile)
    return roles


def _re2_literal(text: str) -> str:
    # Every non-alphanumeric character as \x{..}: safe inside and outside character classes in RE2.
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


def _csv_params(path: Path, profile: SourceProfile, compression: str) -> dict[str, object]:
    names = _csv_names(path, profile, compression)
    pos = {role: names.index(src) + 1 for role, src in _roles(profile).items()}
    # Quoted fields are understood with a one-character delimiter (the quote grammar needs a
    # character class); with a longer delimiter (MovieLens 1M's ::) quotes are plain characters.
    quote = profile.quote if len(profile.delimiter) == 1 and profile.quote else ""
    d, q = _re2_literal(profile.delimiter), _re2_literal(quote or '"')
    fld = f"{q}(?:[^{q}]|{q}{q})*{q}|[^{d}{q}]*"
    return {
        "delim": profile.delimiter,
        "quote": quote,
        "full_pattern": f"(?:{fld})(?:{d}(?:{fld}))*",
        "field_pattern": f"({fld}){d}",
        "n_fields": len(names),
        **{f"pos_{f}": pos.get(f) for f in (*CANONICAL_FIELDS, "ts_offset")},
    }


def _json_pointer(key: str | None) -> str | None:
    """A profile key as a JSON pointer; a dot means nesting (``a.b`` -> ``/a/b``)."""
    if key is None:
        return None
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in key.split("."))


def _pointers(profile: SourceProfile) -> dict[str, str | None]:
    roles = _roles(profile)
    return {f"p_{f}": _json_pointer(roles.get(f)) for f in (*CANONICAL_FIELDS, "ts_offset")}


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
    strict: bool = False,
    link_path: str | None = None,
) -> FileReport:
    """Stage, type and validate one file into its own scratch database; returns its accounting.

    ``whole_day``: this file is the run's only file for ``day`` (enables the day-volume check).
    ``strict``: a guard rail passed refuses the file instead of flagging it."""
    path = path.resolve()
    t0 = time.perf_counter()
    sha, size = sha256_of(path)
    if size == 0:
        raise IngestError(f"{path}: file is empty (0 bytes)")
    compression = _compression(path)
    report = FileReport(source_file=path.name, path=str(path), sha256=sha, size_bytes=size,
                        file_id=file_id_of(path), link_path=link_path)
    report.seconds["checksum"] = round(time.perf_counter() - t0, 3)
    home.tmp.mkdir(parents=True, exist_ok=True)
    scratch = home.tmp / f"stage-{run_id}-{uuid.uuid4().hex[:8]}.duckdb"
    report.scratch = str(scratch)
    try:
        _stage_into(scratch, path, profile, compression, home, run_id, day, report, validate, whole_day, strict)
        if sha256_of(path)[0] != sha:
            raise IngestError(f"{path}: file changed while being read (sha256 differs); refusing it")
    except BaseException:
        cleanup_scratch([report])
        raise
    return report


@contextlib.contextmanager
def _timed(report: FileReport, step: str):
    t0 = time.perf_counter()
    yield
    report.seconds[step] = round(report.seconds.get(step, 0.0) + time.perf_counter() - t0, 3)


def _read_lines(con: duckdb.DuckDBPyConnection, path: Path, profile: SourceProfile, compression: str) -> int:
    """Fill stage_text from the file; returns the number of data lines physically in it."""
    if profile.format == "parquet":
        try:
            n_rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise IngestError(f"{path}: cannot read as parquet ({_friendly(exc)})") from None
        con.execute(sql("ingest/stage_text_parquet"), {"path": str(path)} | _pointers(profile))
        return n_rows
    header_lines = 1 if profile.format == "csv" and profile.header else 0
    params = (_csv_params(path, profile, compression) if profile.format == "csv" else _pointers(profile)) | {
        "header_lines": header_lines}
    count = LineCount()
    reader = line_reader(path, compression, MAX_LINE_BYTES, count)
    con.register("landing_lines", reader)
    try:
        con.execute(sql("ingest/stage_lines"))
        con.execute(sql(f"ingest/stage_text_{profile.format}"), params)
    finally:
        con.unregister("landing_lines")
    return max(count.lines - header_lines, 0)


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
    strict: bool,
) -> None:
    con = duckdb.connect(str(scratch), config=scratch_config())
    try:
        con.execute(sql("warehouse/schema"))
        con.execute(sql("ingest/stage_text_table"))
        try:
            with _timed(report, "read"):
                report.rows_read = _read_lines(con, path, profile, compression)
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: cannot read ({_friendly(exc)})") from None
        except duckdb.Error as exc:
            raise IngestError(f"{path}: cannot read as {profile.format} ({_friendly(exc)})") from None
        [(n_bad, n_blank, n_good)] = con.execute(sql("ingest/count_bad_lines")).fetchall()
        if n_bad + n_blank + n_good != report.rows_read:  # the parser must have seen every line
            raise IngestError(f"{path}: accounting broken: {report.rows_read} data lines in the file, "
                              f"{n_bad + n_blank + n_good} staged")
        report.rows_blank = n_blank
        if report.rows_read - n_blank == 0:
            raise IngestError(f"{path}: no data rows (empty or header only)")
        if n_good == 0:
            [(line, message)] = con.execute(sql("ingest/first_bad_line")).fetchall()
            raise IngestError(
                f"{path}: line {line}: no line could be read with profile {profile.name!r} "
                f"(delimiter {profile.delimiter!r}?): {message}"
            )
        con.execute(sql("ingest/quarantine_bad_lines"),
                    {"source_file": path.name, "file_id": report.file_id, "run_id": run_id})
        with _timed(report, "type"):
            con.execute(sql("ingest/typed_batch"), {"source_file": path.name} | _typed_params(profile))
            [(report.rows_filtered,)] = con.execute(sql("ingest/count_filtered")).fetchall()
            con.execute(sql("ingest/drop_filtered"))
    finally:
        con.close()
    # Row- and table-level expectations (Great Expectations) on the scratch database.
    with _timed(report, "validate"):
        report.validation = (validate or _default_validate)(scratch, run_id, path.name, profile, home, day, whole_day)
    con = duckdb.connect(str(scratch), config=scratch_config())
    try:
        con.execute(sql("ingest/quarantine_bad_lines_move"))
        [counts] = con.execute(sql("ingest/file_counts"),
                               day_span(day) | {"session_key": profile.has_session}).fetchall()
        dup, rejected, other, accepted, _batch_rows, null_keys, min_ts, max_ts = counts
        report.rows_duplicate, report.rows_other_days, report.rows_accepted = dup, other, accepted
        report.rows_quarantined = n_bad + rejected
        report.min_ts, report.max_ts = min_ts, max_ts
        report.check_invariant()
        report.flags = guard_flags(report, null_keys, profile)
        if report.flags and strict:
            reasons = "; ".join(flag.removeprefix(f"{path.name}: ") for flag in report.flags)
            raise ValidationRefusedError(f"{path}: refused under --strict: {reasons}")
        report.days = [str(d) for (d,) in con.execute(sql("ingest/accepted_days"), day_span(day)).fetchall()]
        if accepted:
            with _timed(report, "write_lake"):
                con.execute(
                    sql("ingest/write_lake"),
                    {"run_id": run_id, "ingested_at": datetime.now(UTC).replace(tzinfo=None), **day_span(day),
                     "file_id": report.file_id, "out": str(scratch.with_suffix(".lake"))},
                )
    finally:
        con.close()


def _typed_params(profile: SourceProfile) -> dict[str, object]:
    from tasks.common import profiles

    if hasattr(profiles, "typed_batch_params"):
        return profiles.typed_batch_params(profile)
    return {
        "default_event_type": profile.defaults.get("event_type", "click"),
        "ts_kind": profile.ts_kind,
        "ts_format": profile.ts_format or "%Y-%m-%d %H:%M:%S",
        "timezone": profile.timezone,
        "dedupe": profile.dedupe,
    }


GUARD_DEFAULTS = {"max_duplicate_share": 0.05, "max_filtered_share": 0.5, "max_null_key_share": 0.05}


def guard_flags(report: FileReport, null_keys: int, profile: SourceProfile) -> list[str]:
    """Guard rails: shares of a file's data rows that a healthy log keeps small. A silent 18%
    "duplicate" drop (a timestamp that is only a date) or a key that is mostly NULL is flagged in the
    run's output, ``status`` and the report, and refused with ``--strict``."""
    guards = getattr(profile, "guards", None)
    limit = {k: float(getattr(guards, k, v)) for k, v in GUARD_DEFAULTS.items()}
    rows = report.rows_read - report.rows_blank
    if rows <= 0:
        return []
    name = Path(report.path).name
    shares = (
        ("duplicate", report.rows_duplicate, limit["max_duplicate_share"]),
        ("filtered", report.rows_filtered, limit["max_filtered_share"]),
        ("null-key", null_keys, limit["max_null_key_share"]),
    )
    return [
        f"{name}: {what} share {n / rows:.1%} ({n:,} of {rows:,} rows) above the profile's {lim:.1%}"
        for what, n, lim in shares
        if n / rows > lim
    ]


def _default_validate(
    scratch: Path, run_id: str, batch: str, profile: SourceProfile, home: Home, day: Days, whole_day: bool
) -> list[dict]:
    from tasks.ingest.checks import validate_scratch

    return validate_scratch(scratch, run_id, batch, profile, home, day, whole_day)


def commit_run(home: Home, run_id: str, profile: SourceProfile, day: Days, files: Sequence[FileReport]) -> list[str]:
    """Make the run visible: one DuckDB transaction, then the lake publish, both under the warehouse
    lock. Idempotent: a retry of a committed run only finishes its publish (never commits twice)."""
    with warehouse_lock(home, what=f"ingest {run_id}"), WRITE_LOCK:
        con = connect(home)
        try:
            publish_committed(home, con)  # finish any run a crash or a failed rename left half-published
            [(state,)] = con.execute(sql("ingest/run_state"), {"run_id": run_id}).fetchall() or [(None,)]
            if state is None:
                _commit_transaction(con, home, run_id, profile, day, files)
                crash_point("ingest-after-commit")
            _publish_run(home, con, run_id)
            return [d for (d,) in con.execute(sql("ingest/run_days"), {"run_id": run_id}).fetchall()]
        finally:
            con.close()


def _commit_transaction(con: duckdb.DuckDBPyConnection, home: Home, run_id: str, profile: SourceProfile,
                        day: Days, files: Sequence[FileReport]) -> None:
    file_ids = [f.file_id for f in files]
    scope = day_span(day) | {"file_ids": file_ids}
    _register_legacy_lake(home, con)
    con.begin()
    try:
        con.execute(sql("ingest/commit_run"), scope)
        con.execute(sql("ingest/retire_lake_files"), scope | {"run_id": run_id})
        con.execute(sql("ingest/clear_quarantine"), {"file_ids": file_ids})
        for f in files:
            staged = sorted(Path(f.scratch).with_suffix(".lake").glob("event_date=*/*.parquet"))
            if staged:
                con.execute(sql("ingest/insert_accepted"), {"files": [str(p) for p in staged]})
            for i, part in enumerate(staged):
                event_date = part.parent.name.split("=", 1)[1]
                rel = f"{part.parent.name}/{_lake_name(f.source_file, f.file_id, run_id, i)}"
                con.execute(sql("ingest/add_lake_file"), {"rel_path": rel, "run_id": run_id, "file_id": f.file_id,
                                                          "event_date": event_date, "staged_path": str(part)})
            con.execute(sql("ingest/attach_scratch"), {"path": f.scratch})
            try:
                con.execute(sql("ingest/copy_scratch_rows"), {"file_id": f.file_id})
                con.execute(sql("ingest/copy_validation_results"))
            finally:
                con.execute(sql("ingest/detach_scratch"))
            con.execute(sql("ingest/record_file"), _file_record(run_id, profile, day, f))
        con.execute(sql("ingest/record_run"), {"run_id": run_id})
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _file_record(run_id: str, profile: SourceProfile, day: Days, f: FileReport) -> dict[str, object]:
    return {
        "run_id": run_id, "source_file": f.source_file, "path": f.path, "profile": profile.name, **day_span(day),
        "sha256": f.sha256, "size_bytes": f.size_bytes, "file_id": f.file_id, "link_path": f.link_path,
        **{k: getattr(f, k) for k in COUNT_KEYS}, "min_ts": f.min_ts, "max_ts": f.max_ts,
        "flags": "; ".join(f.flags) or None,
    }


def _register_legacy_lake(home: Home, con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from before the manifest: its lake files become live entries of no known file."""
    if con.execute(sql("ingest/manifest_size")).fetchall()[0][0]:
        return
    for part in sorted(home.clicks_lake.glob("event_date=*/*.parquet")):
        con.execute(sql("ingest/register_legacy_lake_file"),
                    {"rel_path": f"{part.parent.name}/{part.name}", "event_date": part.parent.name.split("=", 1)[1]})


def publish_committed(home: Home, con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Finish every committed run whose lake files are not all in place; returns their run ids.

    Called by every commit (so the next run of any kind repairs a crash), and by the nightly before
    it reads the warehouse. The caller holds the warehouse lock, or this takes it."""
    if con is None:
        with warehouse_lock(home, what="lake repair"), WRITE_LOCK, contextlib.closing(connect(home)) as c:
            return publish_committed(home, c)
    runs = [r for (r,) in con.execute(sql("ingest/committed_runs")).fetchall()]
    for run_id in runs:
        _publish_run(home, con, run_id)
    return runs


def _publish_run(home: Home, con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Place a committed run's files (rename; rebuild from raw.clicks when the staged copy is gone),
    remove the files it retires, then mark the manifest. Every step is safe to repeat."""
    lake = home.clicks_lake
    entries = con.execute(sql("ingest/run_lake_files"), {"run_id": run_id}).fetchall()
    lost: set[tuple[str | None, date]] = set()  # (landing file, day) groups to rebuild from raw.clicks
    for rel_path, state, staged_path, file_id, event_date in entries:
        if state != "pending":
            continue
        target = home.inside(lake / rel_path)
        if target.exists():
            continue
        if staged_path and Path(staged_path).exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged_path, target)
            crash_point("ingest-mid-publish")
        else:
            lost.add((file_id, event_date))
    for file_id, event_date in sorted(lost, key=str):
        group = sorted(r for r, st, _, fid, d in entries if st == "pending" and fid == file_id and d == event_date)
        _rebuild_group(home, con, run_id, file_id, event_date, group)
    for rel_path, state, *_ in entries:
        if state == "retired":
            old = home.inside(lake / rel_path)
            old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only when empty
                old.parent.rmdir()
    con.begin()
    try:
        con.execute(sql("ingest/finish_run_files"), {"run_id": run_id})
        con.execute(sql("ingest/finish_run_live"), {"run_id": run_id})
        con.execute(sql("ingest/finish_run"), {"run_id": run_id})
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _rebuild_group(home: Home, con: duckdb.DuckDBPyConnection, run_id: str, file_id: str | None,
                   event_date: date, group: list[str]) -> None:
    """All rows of (run, landing file, day) into the group's first file; its other pieces are dropped."""
    lake = home.clicks_lake
    first = home.inside(lake / group[0])
    first.parent.mkdir(parents=True, exist_ok=True)
    tmp = first.with_name(f".{first.name}.{uuid.uuid4().hex[:6]}.tmp")
    con.execute(sql("ingest/rebuild_lake_file"),
                {"run_id": run_id, "file_id": file_id, "event_date": event_date, "out": str(tmp)})
    for rel in group[1:]:
        home.inside(lake / rel).unlink(missing_ok=True)
        con.execute(sql("ingest/drop_lake_file"), {"rel_path": rel})
    os.replace(tmp, first)


def cleanup_scratch(files: Sequence[FileReport]) -> None:
    for f in files:
        if f.scratch:
            _remove_scratch(Path(f.scratch))


def _remove_scratch(scratch: Path) -> None:
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


@contextlib.contextmanager
def ingest_run(home: Home, run_id: str):
    """The life of one ingest run: its scratch files are marked alive, and dead runs' are removed."""
    home.ensure()
    with run_alive(home, run_id):
        cleanup_dead_scratch(home)
        yield


def ingest(
    home: Home,
    profile: SourceProfile,
    paths: Sequence[Path],
    day: Days = None,
    run_id: str | None = None,
    validate: Callable[..., list[dict]] | None = None,
    on_file: Callable[[FileReport], None] | None = None,
    strict: bool = False,
    allow_outside_links: bool = False,
) -> IngestReport:
    """Ingest ``paths`` (files) with ``profile``; ``day`` (a date or an inclusive ``(start, end)``)
    restricts the run to, and replaces, those days whole."""
    run_id = run_id or new_run_id()
    inputs = resolve_inputs(paths, allow_outside_links)
    reports: list[FileReport] = []
    with ingest_run(home, run_id):
        try:
            for lf in inputs:
                whole_day = isinstance(day, date) and len(inputs) == 1
                reports.append(stage_file(lf.resolved, profile, home, run_id, day, validate, whole_day, strict,
                                          lf.link_path))
                if on_file:
                    on_file(reports[-1])
            days = commit_run(home, run_id, profile, day, reports)
        finally:
            cleanup_scratch(reports)
    return IngestReport(run_id=run_id, profile=profile.name, day=day_label(day), files=reports, days_written=days)
