"""Stage one landing file: one pass that reads, types and checks every line into an in-memory
DuckDB table, its accounting, its accepted rows as partitioned Parquet, and what the run's
validation and commit need of it in its own scratch DuckDB file. The GX validation of a
run's staged files runs once for the whole run (:func:`tasks.ingest.validate.validate_staged`).

Every physical line of a landing file is accounted for: :mod:`tasks.ingest.read` streams the
file's lines (split on bytes, never by a parser) and hashes its bytes in the same read; the one
statement ``sql/staging/batch.sql`` turns each line into one typed, checked row of
``staging.batch`` (in memory: nothing reads the wide batch once the file is staged); and ``read =
accepted + quarantined + duplicates + filtered + other_days + blank`` is checked against the physical
count. Each file keeps its summary, check columns and quarantine in its own scratch database
(``tmp/stage-*.duckdb``, ``sql/staging/keep_*.sql``), so files can be prepared in parallel
without touching the working database.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from tasks.common.config import Home
from tasks.common.profiles import SourceProfile, typed_batch_params
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import open_memory
from tasks.ingest.errors import IngestError, ValidationRefusedError
from tasks.ingest.formats import MAX_LINE_BYTES, header_lines, landing_settings
from tasks.ingest.landing import Days, compression_of, day_span, file_id_of, sha256_of
from tasks.ingest.read import SCHEMA as LINE_SCHEMA
from tasks.ingest.read import LineCount, line_tables
from tasks.ingest.scratch import new_scratch, remove_scratch
from tasks.ingest.validate import rules_for

COUNT_KEYS = ("rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_filtered",
              "rows_other_days", "rows_blank")
GUARD_DEFAULTS = {"max_duplicate_share": 0.05, "max_filtered_share": 0.5, "max_null_key_share": 0.05}
# What a staged file's scratch database keeps for the run's validation and commit (sql/staging/keep_*.sql).
KEPT_TABLES = ("keep_schema", "keep_summary", "keep_days", "keep_checks", "keep_quarantine")
EMPTY_LINES = LINE_SCHEMA.empty_table()  # what the views over landing_lines are created against


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
    validation: list[dict] = field(default_factory=list)  # its ops.validation_results rows (the run's validation)
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


def _friendly(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text)[:300]


def _identity(path: Path) -> tuple[int, int, int, int]:
    """What changes when a file is written to: size, inode, and modification / change times (ns)."""
    st = path.stat()
    return st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns


@contextlib.contextmanager
def _timed(report: FileReport, step: str):
    t0 = time.perf_counter()
    yield
    report.seconds[step] = round(report.seconds.get(step, 0.0) + time.perf_counter() - t0, 3)


def stage_file(
    path: Path,
    profile: SourceProfile,
    home: Home,
    run_id: str,
    day: Days,
    whole_day: bool = False,
    strict: bool = False,
    link_path: str | None = None,
) -> FileReport:
    """Stage and type one file into its own scratch database; returns its accounting.

    ``whole_day``: this file is the run's only file for ``day`` (enables the day-volume check).
    ``strict``: a guard rail passed refuses the file instead of flagging it. Any other ``OSError``
    while reading propagates as it is: it may be transient, and the flow retries it. A file written to while
    it is staged (size, inode or times differ afterwards) is refused: its digest would describe
    bytes that were not all ingested."""
    path = path.resolve()
    before = _identity(path)
    if before[0] == 0:
        raise IngestError(f"{path}: file is empty (0 bytes)")
    compression = compression_of(path)
    report = FileReport(source_file=path.name, path=str(path), sha256="", size_bytes=before[0],
                        file_id=file_id_of(path), link_path=link_path)
    scratch = new_scratch(home, run_id)
    report.scratch = str(scratch)
    try:
        _stage_into(scratch, path, profile, compression, run_id, day, report, whole_day, strict, home.tmp / "duckdb")
        if _identity(path) != before:
            raise IngestError(f"{path}: file changed while being read (size or modification time differs); refusing it")
    except BaseException:
        cleanup_scratch([report])
        raise
    return report


def _one_pass(con: duckdb.DuckDBPyConnection, path: Path, profile: SourceProfile, compression: str,
              params: dict[str, object], report: FileReport) -> None:
    """Read, type and check every line into staging.batch; fills rows_read, sha256 and size."""
    con.execute(sql("staging/set_landing"), {"landing": landing_settings(path, profile, compression)})
    con.execute(sql("staging/batch_table"))
    # Every row carries its line number, so the table's physical order means nothing; not keeping
    # it lets both cores write the batch (measured: a third less time for 2M lines).
    con.execute(sql("staging/order_free"))
    try:
        if profile.format == "parquet":
            _one_pass_parquet(con, path, params, report)
        else:
            _one_pass_lines(con, path, profile, compression, params, report)
    finally:
        con.execute(sql("staging/order_kept"))


def _one_pass_parquet(con: duckdb.DuckDBPyConnection, path: Path, params: dict[str, object],
                      report: FileReport) -> None:
    try:
        report.rows_read = pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise IngestError(f"{path}: cannot read as parquet ({_friendly(exc)})") from None
    report.sha256, report.size_bytes = sha256_of(path)
    con.execute(sql("staging/fields_parquet"))
    con.execute(sql("staging/batch"), params)


def _one_pass_lines(con: duckdb.DuckDBPyConnection, path: Path, profile: SourceProfile, compression: str,
                    params: dict[str, object], report: FileReport) -> None:
    """The file's lines reach DuckDB as consecutive in-memory tables under the fixed name
    landing_lines (tasks/ingest/read.py); the views over that name re-bind to each one."""
    count = LineCount()
    con.register("landing_lines", EMPTY_LINES)
    con.execute(sql("staging/lines"))
    con.execute(sql(f"staging/fields_{profile.format}"))
    try:
        for table in line_tables(path, compression, MAX_LINE_BYTES, count):
            con.register("landing_lines", table)
            con.execute(sql("staging/batch"), params)
    finally:
        con.unregister("landing_lines")
    report.rows_read = max(count.lines - header_lines(profile), 0)
    report.sha256, report.size_bytes = count.sha256, count.file_bytes


def _summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    cur = con.execute(sql("staging/read_summary"))
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))


def _account(con: duckdb.DuckDBPyConnection, path: Path, profile: SourceProfile, report: FileReport,
             s: dict[str, Any]) -> None:
    """The file's buckets from its summary; refuse a file whose lines were not all seen or usable."""
    if s["rows_staged"] != report.rows_read:  # the pass must have seen every physical line
        raise IngestError(f"{path}: accounting broken: {report.rows_read} data lines in the file, "
                          f"{s['rows_staged']} staged")
    if report.rows_read - s["blank_lines"] == 0:
        raise IngestError(f"{path}: no data rows (empty or header only)")
    if s["good_lines"] == 0:
        [(line, message)] = con.execute(sql("staging/first_bad_line")).fetchall()
        raise IngestError(
            f"{path}: line {line}: no line could be read with profile {profile.name!r} "
            f"(delimiter {profile.delimiter!r}?): {message}"
        )
    report.rows_blank, report.rows_filtered, report.rows_duplicate = s["blank_lines"], s["filtered"], s["duplicates"]
    report.rows_quarantined = s["bad_lines"] + s["rejected"]
    report.rows_other_days, report.rows_accepted = s["other_days"], s["accepted"]
    report.min_ts, report.max_ts = s["min_ts"], s["max_ts"]
    report.check_invariant()


def open_batch(spill: Path) -> duckdb.DuckDBPyConnection:
    """The in-memory database a file's one pass writes into (``staging.batch``), spilling to ``spill``."""
    con = open_memory(spill)
    try:
        con.execute(sql("warehouse/schema"))
    except BaseException:
        con.close()
        raise
    return con


def checked_pass(con: duckdb.DuckDBPyConnection, path: Path, profile: SourceProfile, compression: str, day: Days,
                 whole_day: bool, report: FileReport) -> None:
    """The one pass over ``path`` into ``con``'s ``staging.batch`` (every line read, typed and
    checked; fills ``rows_read``, ``sha256`` and ``size_bytes``), timed as ``read_type_check``. The
    stage and the benchmark's floor run this same code."""
    typing = {k: v for k, v in typed_batch_params(profile).items() if k != "dedupe"}  # dedupe: duplicates.sql
    params = typing | rules_for(profile, day, whole_day).check_params()
    try:
        with _timed(report, "read_type_check"):
            _one_pass(con, path, profile, compression, params, report)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # the file's bytes are bad: retrying cannot help
        raise IngestError(f"{path}: cannot read ({_friendly(exc)})") from None
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read as {profile.format} ({_friendly(exc)})") from None


def write_lake(con: duckdb.DuckDBPyConnection, run_id: str, day: Days, report: FileReport, out: Path) -> None:
    """The file's accepted rows (not in ``staging.duplicates``) as partitioned Parquet under ``out``
    (``staging/write_lake.sql``), timed as ``write_lake``. The stage and the benchmark's floor run this."""
    with _timed(report, "write_lake"):
        con.execute(sql("staging/order_free"))  # the batch has no order to keep (see _one_pass)
        con.execute(sql("staging/write_lake"), {
            "run_id": run_id, "ingested_at": datetime.now(UTC).replace(tzinfo=None), **day_span(day),
            "source_file": report.source_file, "file_id": report.file_id, "out": str(out)})


def _stage_into(
    scratch: Path, path: Path, profile: SourceProfile, compression: str, run_id: str, day: Days,
    report: FileReport, whole_day: bool, strict: bool, spill: Path,
) -> None:
    con = open_batch(spill)
    try:
        checked_pass(con, path, profile, compression, day, whole_day, report)
        with _timed(report, "duplicates_summary"):
            con.execute(sql("staging/duplicates"), {"dedupe": profile.dedupe})
            con.execute(sql("staging/summary"), day_span(day) | {"session_key": profile.has_session})
            summary = _summary(con)
            # The day-volume check's input and the days this file writes: one grouped query.
            con.execute(sql("staging/batch_days"), day_span(day))
        _account(con, path, profile, report, summary)
        report.flags = guard_flags(report, summary["null_keys"], profile)
        if report.flags and strict:
            reasons = "; ".join(flag.removeprefix(f"{path.name}: ") for flag in report.flags)
            raise ValidationRefusedError(f"{path}: refused under --strict: {reasons}")
        report.days = [str(d) for (d,) in con.execute(sql("staging/accepted_days")).fetchall()]
        # Written before the run's validation: the Parquet stays in the scratch folder, and only the
        # commit of a validated run moves it into the lake.
        if report.rows_accepted:
            write_lake(con, run_id, day, report, scratch.with_suffix(".lake"))
        with _timed(report, "keep_scratch"):
            con.execute(sql("staging/attach_scratch_rw"), {"path": str(scratch)})
            try:
                for kept in KEPT_TABLES:
                    con.execute(sql(f"staging/{kept}"))
            finally:
                con.execute(sql("staging/detach_scratch"))
    finally:
        con.close()


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


def staged_parts(report: FileReport) -> list[Path]:
    """The file's Parquet day partitions waiting in its scratch folder (``event_date=D/*.parquet``)."""
    return sorted(Path(report.scratch).with_suffix(".lake").glob("event_date=*/*.parquet"))


def cleanup_scratch(files: Sequence[FileReport]) -> None:
    for f in files:
        if f.scratch:
            remove_scratch(Path(f.scratch))
