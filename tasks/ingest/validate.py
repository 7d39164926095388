"""Validation of a run's staged files, once per run: the Great Expectations suites over the one
pass's check columns of every file, the per-day volume check in one grouped query, and each file's
results as ops.validation_results rows.

The rules (:class:`ValidationRules`) are bound into the one pass (``sql/staging/batch.sql``), which
computes every row-level check as a BOOLEAN column of ``staging.batch``; ``staging.summary`` counts
them in one aggregate per file. Then :func:`validate_files`, in a database of the run's own:

1. Plain DuckDB connection: each file's check columns, duplicate rate and accepted rows per day are
   copied from its scratch file (a narrow copy); the day table is set against the trailing daily
   counts of ``raw.clicks``. Connection closed.
2. GX (:mod:`tasks.ingest.gx_suite`, one in-memory context per process) validates three assets in
   one checkpoint run for the whole run: the check columns of every checked row (each expectation:
   the column holds only ``false``), the days of every file (``ratio`` between bounds) and one
   duplicate rate per file.
3. GX's unexpected and element counts for every check must equal the sum of the files' router counts
   (:class:`SuiteRouterDriftError` otherwise: GX and the router read the same columns, so a mismatch
   means a broken asset or suite); each file's records, from its own counts, are the
   ``ops.validation_results`` rows the commit writes.

Why once per run: GX's cost is its own Python (the metric graph of the suites), about half a second
per checkpoint run whatever the rows; per file, that was most of a 10-file run's validation.

Rows that fail a row-level check are quarantined by the commit (from the same columns); only a
table-level failure refuses the run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common.columns import column_checks
from tasks.common.config import Home, lock_wait_seconds
from tasks.common.locks import WRITE_LOCK
from tasks.common.profiles import SourceProfile
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import open_file, wait_for_file_lock
from tasks.ingest.errors import ValidationRefusedError
from tasks.ingest.gx_suite import (
    SUITE_BATCH,
    SUITE_DAYS,
    SUITE_ROWS,
    Check,
    GXExecutionError,
    SuiteRun,
    ordered,
    run_suites,
)
from tasks.ingest.scratch import new_scratch, remove_scratch

# Non-empty, no C0/C1 control characters (NUL included), at most 256 characters. Anything else --
# quotes, semicolons, SQL text, Hangul, emoji -- is a valid id and passes byte-exact.
ID_FORBIDDEN = r"[\x00-\x1F\x7F-\x9F]"
ID_MAX_CHARS = 256
DEFAULT_EVENT_TYPES = frozenset({"click", "view", "cart", "purchase", "rating"})
# Columns the one pass can check for NULL (batch.sql has one flag per column, gated by $required).
NULLABLE_CHECK_COLUMNS = ("session_id", "user_id", "item_id", "event_type", "category", "ts")
ID_COLUMNS = ("session_id", "user_id", "item_id")

__all__ = ["GXExecutionError", "RunValidation", "StagedBatch", "SuiteRouterDriftError", "ValidationRules",
           "validate_files", "validate_staged"]


class BatchContractError(RuntimeError):
    """staging.batch (or the warehouse schema) is not what the ingest contract promises."""


class SuiteRouterDriftError(RuntimeError):
    """GX's unexpected_count differs from the router's count for the same check."""


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ValidationRules:
    """What a valid batch looks like. Pass ``max_ts`` explicitly for reproducible runs."""

    min_ts: datetime = datetime(1995, 1, 1)
    max_ts: datetime = field(default_factory=lambda: _utc_now() + timedelta(days=1))
    id_forbidden: str = ID_FORBIDDEN  # a valid id has 1..id_max_chars characters, none in this class
    id_max_chars: int = ID_MAX_CHARS
    event_types: frozenset[str] = DEFAULT_EVENT_TYPES
    # Accepted rows of a day / mean daily rows of the trailing_days before it in raw.clicks.
    day: date | None = None  # a --date / range run: only [day, day_to]'s volume is checked (other days' rows
    day_to: date | None = None  # are not this run's); day_to defaults to day
    min_day_ratio: float = 0.2
    max_day_ratio: float = 5.0
    trailing_days: int = 7
    max_duplicate_rate: float = 0.5
    required: tuple[str, ...] = ("session_id", "item_id", "ts")

    def __post_init__(self) -> None:
        unknown = set(self.required) - set(NULLABLE_CHECK_COLUMNS)
        if unknown:
            raise ValueError(f"required columns not checkable: {sorted(unknown)}; known: {NULLABLE_CHECK_COLUMNS}")
        if not self.event_types:
            raise ValueError("event_types must not be empty")
        if self.min_ts >= self.max_ts or self.min_day_ratio > self.max_day_ratio or self.trailing_days < 1:
            raise ValueError(f"inconsistent bounds in {self}")
        # Frozen dataclass: normalise containers so the rules stay hashable and order-free.
        object.__setattr__(self, "event_types", frozenset(self.event_types))
        object.__setattr__(self, "required", tuple(dict.fromkeys(self.required)))

    @property
    def id_regex(self) -> str:
        """The id rule as one regex (for people and Data Docs; the SQL tests its two parts)."""
        return f"^[^{self.id_forbidden[1:-1]}]{{1,{self.id_max_chars}}}$"

    def check_params(self) -> dict[str, object]:
        """The row checks' bound parameters of ``sql/staging/batch.sql``."""
        return {"required": list(self.required), "min_ts": self.min_ts, "max_ts": self.max_ts,
                "id_forbidden": self.id_forbidden, "id_max_chars": self.id_max_chars,
                "event_types": sorted(self.event_types)}


def rules_for(profile: SourceProfile, day: date | tuple[date, date] | None = None,
              whole_day: bool = False) -> ValidationRules:
    """The rules of one file of ``profile``. The day-volume expectation (rows of a day against the
    trailing mean) is meaningful only when this file holds the whole day: a ``--date`` run with one
    landing file for the day (``whole_day``). For a file that spans many days (its first and last
    days are partial by nature), or one of several files that share a day, it runs with open bounds."""
    required = ["item_id", "ts"] + (["session_id"] if profile.has_session else ["user_id"])
    day_from, day_to = day if isinstance(day, tuple) else (day, day)
    rules = ValidationRules(required=tuple(required), day=day_from, day_to=day_to, event_types=profile.event_types)
    return rules if whole_day else replace(rules, min_day_ratio=0.0, max_day_ratio=float("inf"))


@dataclass
class ValidationOutcome:
    """Result of one batch. ``ok`` is False only for table-level failures (the caller fails the run);
    row-level failures are quarantined, counted in ``reject_counts`` (per check, not first-wins)."""

    ok: bool
    failures: list[str]
    rows_read: int
    rows_duplicate: int
    rows_checked: int
    rows_rejected: int
    reject_counts: dict[str, int]
    results: list[dict[str, Any]]
    suite_run: SuiteRun | None
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benchmarks


_RULE_NAMES = {"null": "expect_column_values_to_not_be_null", "range": "expect_column_values_to_be_between",
               "regex": "expect_column_values_to_match_regex", "set": "expect_column_values_to_be_in_set"}


# A dictionary check (sql/staging/columns.yaml, raw.clicks) -> the prefix of its check column in
# sql/staging/batch.sql, in the router's first-wins order. `$setting` names the ValidationRules field a
# check takes its value from: only those are row checks of a batch (the rest are table invariants).
_CHECK_PREFIX = {"not_null": "null", "between": "range", "matches": "regex", "accepted_values": "set"}


def row_check_keys(rules: ValidationRules) -> list[str]:
    """The row-level checks in force, in the router's first-wins order (batch.sql), taken from the
    column dictionary: a NULL check for each column the dictionary declares not-null and the profile
    requires, then every check whose value is a profile setting ($min_ts, $id_regex, $event_types)."""
    declared = column_checks("staging", "raw.clicks")
    keys = [f"null_{c}" for c in NULLABLE_CHECK_COLUMNS
            if c in rules.required and any(k.kind == "not_null" for k in declared.get(c, ()))]
    for prefix in ("range", "regex", "set"):
        keys += [f"{prefix}_{column}" for column, checks in declared.items()
                 for k in checks if _CHECK_PREFIX[k.kind] == prefix and _from_profile(k.arg)]
    return keys


def _from_profile(arg: object) -> bool:
    """Whether a check's value refers to a profile setting (``$name``, alone or inside a mapping)."""
    values = arg.values() if isinstance(arg, dict) else [arg]
    return any(isinstance(v, str) and v.startswith("$") for v in values)


def _row_checks(rules: ValidationRules) -> list[Check]:
    import great_expectations.expectations as gxe

    wording = {"null": "is not NULL", "range": f"is between {rules.min_ts} and {rules.max_ts}",
               "regex": f"matches {rules.id_regex}", "set": f"is one of {sorted(rules.event_types)}"}
    checks = []
    for key in row_check_keys(rules):
        kind, column = key.split("_", 1)
        expectation = gxe.ExpectColumnValuesToBeInSet(
            column=key, value_set=[False], description=f"{column} {wording[kind]} (check column {key})")
        checks.append(Check(key, "row", _RULE_NAMES[kind], column, expectation))
    return checks


def _table_checks(rules: ValidationRules) -> tuple[list[Check], list[Check]]:
    import great_expectations.expectations as gxe

    days = Check("day_ratio", "table", "expect_column_values_to_be_between", "ratio",
                 gxe.ExpectColumnValuesToBeBetween(column="ratio", min_value=rules.min_day_ratio,
                                                   max_value=rules.max_day_ratio))
    # One row per file: its duplicate rate over its kept rows (-1 for a file with none).
    dup = Check("duplicate_rate", "table", "expect_column_values_to_be_between", "duplicate_rate",
                gxe.ExpectColumnValuesToBeBetween(column="duplicate_rate", min_value=0.0,
                                                  max_value=rules.max_duplicate_rate))
    return [days], [dup]


@dataclass(frozen=True)
class StagedBatch:
    """One staged file as validation sees it: its name (the batch) and its scratch database."""

    batch: str
    scratch: Path


@dataclass
class RunValidation:
    """One run's validation: an outcome per file, in the run's order, and GX's results of the run."""

    outcomes: list[ValidationOutcome]
    suite_run: SuiteRun | None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benchmarks


def _gather(con: duckdb.DuckDBPyConnection, files: Sequence[StagedBatch]) -> list[dict[str, Any]]:
    """Copy what GX validates of each staged file into the run's database; returns their summaries."""
    for table in ("run_schema", "run_rows_table", "run_batches_table", "run_days_table"):
        con.execute(sql(f"staging/{table}"))
    summaries = []
    for i, f in enumerate(files):
        con.execute(sql("staging/attach_scratch"), {"path": str(f.scratch)})
        try:
            cur = con.execute(sql("staging/scratch_summary"))
            summaries.append(dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True)))
            for part in ("staging/run_rows_add", "staging/run_batch_add", "staging/run_days_add"):
                con.execute(sql(part), {"file_index": i})
        finally:
            con.execute(sql("staging/detach_scratch"))
    return summaries


def _day_tables(con: duckdb.DuckDBPyConnection, rules: ValidationRules, history_db: Path | None) -> None:
    """Every file's accepted rows per day against the trailing daily counts of raw.clicks."""
    con.execute(sql("staging/history_init"))
    window = {"trailing_days": rules.trailing_days}
    if history_db is not None:
        # Another process may hold the warehouse read-write for a moment: wait like every other opener.
        wait_for_file_lock(lambda: con.execute(sql("staging/attach_history"), {"path": str(history_db)}), history_db)
        try:
            if con.execute(sql("staging/raw_clicks_exists"), {"database": "history"}).fetchone()[0]:
                con.execute(sql("staging/history_attached"), window)
        finally:
            con.execute(sql("staging/detach_history"))
    else:
        database = con.execute(sql("staging/current_database")).fetchall()[0][0]
        if con.execute(sql("staging/raw_clicks_exists"), {"database": database}).fetchone()[0]:
            con.execute(sql("staging/history_local"), window)
    con.execute(sql("staging/day_counts"), window)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def validate_files(
    db_path: Path,
    run_id: str,
    files: Sequence[StagedBatch],
    rules: ValidationRules,
    history_db: Path | None = None,
) -> RunValidation:
    """Validate a run's staged files (``staging.batch``, ``.duplicates``, ``.summary``,
    ``.validate_days`` of each scratch database) in one GX checkpoint run.

    ``db_path``: a new database for the run's validation; what GX validates of every file is copied
    into it (:func:`_gather`). GX's figures are the run's; each file's record is its router count,
    and the run's sum of those must equal GX's (:class:`SuiteRouterDriftError` otherwise: GX and the
    router read the same columns, so a mismatch means a broken asset or suite). Each file's records
    (``ops.validation_results`` rows) are in its outcome; the commit writes them with the run.

    ``history_db``: the warehouse whose ``raw.clicks`` gives the day-volume history; default:
    ``raw.clicks`` in ``db_path``. Raises :class:`GXExecutionError` if any expectation raised. No
    connection to these databases may be open in this process meanwhile.
    """
    started = time.perf_counter()
    row_checks = _row_checks(rules)
    day_checks, batch_checks = _table_checks(rules)
    suites = {SUITE_ROWS: row_checks, SUITE_DAYS: day_checks, SUITE_BATCH: batch_checks}
    con = open_file(db_path, "scratch")
    try:
        summaries = _gather(con, files)
        _day_tables(con, rules, history_db)
    except duckdb.Error as exc:
        names = ", ".join(f.batch for f in files)
        raise BatchContractError(
            f"{names}: cannot prepare validation of staging.batch (ingest contract, or history db locked?): {exc}"
        ) from exc
    finally:
        con.close()
    timings = {"gather": time.perf_counter() - started}

    mark = time.perf_counter()
    # GX's stores refuse '/' and '\\' in run names.
    suite_run = run_suites(db_path, re.sub(r"[^A-Za-z0-9._=-]", "_", run_id), suites)
    timings["gx"] = time.perf_counter() - mark

    mark = time.perf_counter()
    con = open_file(db_path, "scratch", read_only=True)
    try:
        bad_days = con.execute(sql("staging/day_failures"),
                               {"min_ratio": rules.min_day_ratio, "max_ratio": rules.max_day_ratio}).fetchall()
        day_rows = {i: (n, with_history) for i, n, with_history in con.execute(sql("staging/day_check_counts")).fetchall()}
    finally:
        con.close()
    judge = _Judge(rules, summaries, bad_days, day_rows)
    drift = [msg for name, checks in suites.items()
             for check, result in zip(checks, ordered(suite_run.by_suite[name], checks), strict=True)
             for msg in judge.drift(check, result)]
    if drift:
        raise SuiteRouterDriftError(f"{run_id}: GX suite and SQL router disagree: " + "; ".join(drift))
    outcomes = []
    validated_at = _utc_now()
    for i, f in enumerate(files):
        records, failures = [], []
        for name, checks in suites.items():
            for check, result in zip(checks, ordered(suite_run.by_suite[name], checks), strict=True):
                record, failure = judge.record(i, check, result)
                records.append(record | {"run_id": run_id, "batch": f.batch, "validated_at": validated_at})
                failures += failure
        s = summaries[i]
        outcomes.append(ValidationOutcome(
            ok=not failures, failures=failures, rows_read=s["kept"], rows_duplicate=s["duplicates"],
            rows_checked=s["checked"], rows_rejected=s["rejected"], reject_counts={c.key: s[c.key] for c in row_checks},
            results=records, suite_run=suite_run, seconds=time.perf_counter() - started))
    timings["judge"] = time.perf_counter() - mark
    return RunValidation(outcomes=outcomes, suite_run=suite_run, timings=timings)


@dataclass
class _Judge:
    """Each file's verdict on each check, from the router's counts, and GX's run-wide figure checked
    against their sum."""

    rules: ValidationRules
    summaries: list[dict[str, Any]]
    bad_days: list[tuple]  # (file_index, event_date, rows, trailing_mean, ratio, history_days)
    day_rows: dict[int, tuple[int, int]]  # file_index -> (days, days with history)

    def _dup_fails(self, s: dict[str, Any]) -> bool:
        return not s["kept"] or s["duplicate_rate"] > self.rules.max_duplicate_rate

    def drift(self, check: Check, result: Any) -> list[str]:
        """GX's count over the run against the router's, per check (and the rows GX saw)."""
        res = result.result or {}
        unexpected, elements = res.get("unexpected_count"), res.get("element_count")
        if unexpected is None and elements == 0:
            unexpected = 0  # GX sums over zero rows give NULL; nothing checked means nothing unexpected
        if check.level == "row":
            sql_count = sum(s[check.key] for s in self.summaries)
            sql_elements = sum(s["checked"] for s in self.summaries)
        elif check.key == "day_ratio":
            sql_count, sql_elements = len(self.bad_days), sum(n for n, _ in self.day_rows.values())
        else:
            sql_count = sum(self._dup_fails(s) for s in self.summaries)
            sql_elements = len(self.summaries)
        label = f"{check.rule}({check.column})"
        out = []
        if unexpected != sql_count:
            out.append(f"{label}: GX unexpected_count={unexpected}, SQL router={sql_count}")
        if elements != sql_elements:
            out.append(f"{label}: GX element_count={elements}, SQL router={sql_elements}")
        if bool(result.success) != (sql_count == 0):
            out.append(f"{label}: GX success={result.success} with {sql_count} failing in SQL")
        return out

    def record(self, i: int, check: Check, result: Any) -> tuple[dict[str, Any], list[str]]:
        """File ``i``'s ops.validation_results row for ``check``, and its table-level failure messages."""
        config, res, s = result.expectation_config, result.result or {}, self.summaries[i]
        label = f"{check.rule}({check.column})"
        failures: list[str] = []
        details: dict[str, Any] = {
            "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
            "gx_expectation": f"{config.type}({config.kwargs.get('column')})",
            # GX validated the run's files as one asset; each file's count is the router's, whose
            # run-wide sum equalled GX's (drift).
            "gx_run": {"unexpected_count": res.get("unexpected_count"), "element_count": res.get("element_count"),
                       "files": len(self.summaries)},
        }
        if check.level == "row":
            unexpected, element_count = s[check.key], s["checked"]
            details["sql_router_count"] = unexpected
            details["rule"] = config.description
            observed: Any = f"{unexpected} of {element_count} rows unexpected"
            success = unexpected == 0
        elif check.key == "day_ratio":
            bad = [b[1:] for b in self.bad_days if b[0] == i]
            days, with_history = self.day_rows.get(i, (0, 0))
            unexpected, element_count, success = len(bad), days, not bad
            details["days"] = days
            details["days_skipped_no_history"] = days - with_history
            details["failing_days"] = [
                {"event_date": str(d), "rows": n, "trailing_mean": m, "ratio": r, "history_days": h}
                for d, n, m, r, h in bad
            ]
            observed = (_json(details["failing_days"]) if bad
                        else f"{with_history} day(s) within bounds, {days - with_history} skipped (no history)")
            for d, n, m, r, h in bad:
                failures.append(
                    f"{label}: day {d} has {n} rows vs trailing mean {m:.1f} over {h} earlier day(s): "
                    f"observed ratio {r:.4f} outside [{self.rules.min_day_ratio}, {self.rules.max_day_ratio}]"
                )
        else:  # duplicate_rate
            observed, element_count = s["duplicate_rate"], s["kept"]
            success = not self._dup_fails(s)
            unexpected = int(not success)
            if not element_count:
                failures.append(f"{label}: batch has no rows, duplicate rate undefined")
            elif not success:
                failures.append(
                    f"{label}: observed duplicate rate {observed} of {element_count} rows above max "
                    f"{self.rules.max_duplicate_rate}"
                )
        record = {
            "expectation": check.rule,
            "column_name": check.column,
            "level": check.level,
            "success": success,
            "observed_value": None if observed is None else str(observed),
            "unexpected_count": unexpected,
            "element_count": element_count,
            "details": _json(details),
        }
        return record, failures


def validate_staged(
    files: Sequence[StagedBatch], run_id: str, profile: SourceProfile, home: Home,
    day: date | tuple[date, date] | None = None, whole_day: bool = False,
) -> RunValidation:
    """Validate a run's staged files of ``profile`` at once; a table-level failure of any file
    refuses the run, naming every failing file."""
    rules = rules_for(profile, day, whole_day)
    db = new_scratch(home, run_id)  # named like the run's scratch files: a killed run's is removed
    (home.root / "locks").mkdir(parents=True, exist_ok=True)
    asked = time.perf_counter()
    try:
        # The history comes from the working database, attached read-only: not while this process
        # writes it (concurrent runs of a backfill take turns here; the wait is not validation work).
        with WRITE_LOCK:
            waited = time.perf_counter() - asked
            run = validate_files(db, run_id, files, rules, history_db=home.db if home.db.exists() else None)
    finally:
        remove_scratch(db)
    run.timings["lock_wait"] = waited
    refused = [f"{f.batch}: validation failed: {'; '.join(o.failures)}"
               for f, o in zip(files, run.outcomes, strict=True) if not o.ok]
    if refused:
        raise ValidationRefusedError(" | ".join(refused))
    return run


def docs_lock(home: Home) -> FileLock:
    """GX's file stores under home/gx are shared by every process on this home: one writer at a time."""
    (home.root / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(home.root / "locks" / "gx.lock", timeout=lock_wait_seconds())


# Thin Prefect wrapper: a validation is cheap to redo and its inputs are paths, so no caching and
# no retries (a failure here is a data or suite problem, not a transient one).
validate_run_task = task(name="validate-run", retries=0, cache_policy=NO_CACHE)(validate_staged)
