"""Validation of one staged file: the Great Expectations suite over the one pass's check columns,
the per-day volume check in one grouped query, and the results as ops.validation_results rows.

The rules (:class:`ValidationRules`) are bound into the one pass (``sql/staging/batch.sql``), which
computes every row-level check as a BOOLEAN column of ``staging.batch``; ``staging.summary`` counts
them in one aggregate. Then :func:`validate_batch`:

1. Plain DuckDB connection: the day-volume table (accepted rows per day, one grouped query, against
   the trailing daily counts of ``raw.clicks``). Connection closed.
2. GX (:mod:`tasks.ingest.gx_suite`, one in-memory context per process) validates three assets in
   one checkpoint: the check columns of the checked rows (each expectation: the column holds only
   ``false``), the day table (``ratio`` between bounds) and the file's duplicate rate.
3. Plain connection again: GX's unexpected_count for every row check must equal the summary's count
   (:class:`SuiteRouterDriftError` otherwise: GX and the router read the same column, so a mismatch
   means a broken asset or suite); the results go to ``ops.validation_results`` in the scratch file.

Rows that fail a row-level check are quarantined by the commit (from the same columns); only a
table-level failure refuses the file.
"""

from __future__ import annotations

import json
import re
import time
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
from tasks.common.warehouse import open_file, transaction, wait_for_file_lock
from tasks.ingest.errors import ValidationRefusedError
from tasks.ingest.gx_suite import (
    GX_LOCK,
    SUITE_BATCH,
    SUITE_DAYS,
    SUITE_ROWS,
    Check,
    GXExecutionError,
    SuiteRun,
    ordered,
    run_suites,
)

# Non-empty, no C0/C1 control characters (NUL included), at most 256 characters. Anything else --
# quotes, semicolons, SQL text, Hangul, emoji -- is a valid id and passes byte-exact.
ID_FORBIDDEN = r"[\x00-\x1F\x7F-\x9F]"
ID_MAX_CHARS = 256
DEFAULT_EVENT_TYPES = frozenset({"click", "view", "cart", "purchase", "rating"})
# Columns the one pass can check for NULL (batch.sql has one flag per column, gated by $required).
NULLABLE_CHECK_COLUMNS = ("session_id", "user_id", "item_id", "event_type", "category", "ts")
ID_COLUMNS = ("session_id", "user_id", "item_id")

__all__ = ["GXExecutionError", "SuiteRouterDriftError", "ValidationRules", "validate_batch", "validate_scratch"]


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
    # The mean of the 0/1 duplicate flag over the kept rows is the file's duplicate rate.
    dup = Check("duplicate_rate", "table", "expect_column_mean_to_be_between", "is_duplicate",
                gxe.ExpectColumnMeanToBeBetween(column="is_duplicate", min_value=0.0,
                                                max_value=rules.max_duplicate_rate))
    return [days], [dup]


def _day_tables(con: duckdb.DuckDBPyConnection, rules: ValidationRules, history_db: Path | None) -> None:
    """Accepted rows per day (one grouped query) against the trailing daily counts of raw.clicks."""
    con.execute(sql("staging/batch_days"), {"day_from": rules.day, "day_to": rules.day_to or rules.day})
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


def validate_batch(
    db_path: Path,
    run_id: str,
    batch: str,
    rules: ValidationRules,
    history_db: Path | None = None,
) -> ValidationOutcome:
    """Validate the staged file in ``db_path`` (``staging.batch``, ``.duplicates``, ``.summary``;
    see the module docstring).

    ``history_db``: the warehouse whose ``raw.clicks`` gives the day-volume history when ``db_path``
    is a separate scratch database; default: ``raw.clicks`` in ``db_path``. Raises
    :class:`GXExecutionError` if any expectation raised, :class:`SuiteRouterDriftError` if GX and
    the summary disagree. No connection to ``db_path`` may be open in this process meanwhile.
    """
    started = time.perf_counter()
    row_checks = _row_checks(rules)
    day_checks, batch_checks = _table_checks(rules)
    suites = {SUITE_ROWS: row_checks, SUITE_DAYS: day_checks, SUITE_BATCH: batch_checks}
    timings: dict[str, float] = {}
    con = open_file(db_path, "scratch")
    try:
        _day_tables(con, rules, history_db)
    except duckdb.Error as exc:
        raise BatchContractError(
            f"{batch}: cannot prepare validation of staging.batch in {db_path} (ingest contract, or history db locked?): {exc}"
        ) from exc
    finally:
        con.close()
    timings["day_counts"] = time.perf_counter() - started

    mark = time.perf_counter()
    # GX's stores refuse '/' and '\\' in run names; batch names are file names.
    run_name = re.sub(r"[^A-Za-z0-9._=-]", "_", f"{run_id}__{batch}")
    suite_run = run_suites(db_path, run_name, suites)
    timings["gx"] = time.perf_counter() - mark

    mark = time.perf_counter()
    con = open_file(db_path, "scratch")
    try:
        cur = con.execute(sql("staging/read_summary"))
        summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
        bad_days = con.execute(sql("staging/day_failures"),
                               {"min_ratio": rules.min_day_ratio, "max_ratio": rules.max_day_ratio}).fetchall()
        day_rows = con.execute(sql("staging/day_check_counts")).fetchall()[0]
        records, failures, drift = [], [], []
        validated_at = _utc_now()
        for suite_name, checks in suites.items():
            for check, result in zip(checks, ordered(suite_run.by_suite[suite_name], checks), strict=True):
                record, failure, drift_msg = _record(check, result, summary, bad_days, day_rows, rules)
                records.append(record | {"run_id": run_id, "batch": batch, "validated_at": validated_at})
                failures += failure
                drift += drift_msg
        if drift:
            raise SuiteRouterDriftError(f"{batch}: GX suite and SQL router disagree: " + "; ".join(drift))
        with transaction(con):
            con.execute(sql("staging/clear_results"), {"run_id": run_id, "batch": batch})
            con.executemany(sql("staging/store_result"), records)
    finally:
        con.close()
    return ValidationOutcome(
        ok=not failures, failures=failures, rows_read=summary["kept"], rows_duplicate=summary["duplicates"],
        rows_checked=summary["checked"], rows_rejected=summary["rejected"],
        reject_counts={c.key: summary[c.key] for c in row_checks}, results=records, suite_run=suite_run,
        seconds=time.perf_counter() - started, timings=timings | {"store": time.perf_counter() - mark},
    )


def _record(
    check: Check, result: Any, summary: dict[str, Any], bad_days: list[tuple], day_rows: tuple[int, int],
    rules: ValidationRules,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """One ops.validation_results row, the table-level failure messages, the drift messages."""
    config = result.expectation_config
    res = result.result or {}
    label = f"{check.rule}({check.column})"
    failures: list[str] = []
    drift: list[str] = []
    unexpected = res.get("unexpected_count")
    element_count = res.get("element_count")
    if unexpected is None and element_count == 0:
        unexpected = 0  # GX sums over zero rows give NULL; nothing checked means nothing unexpected
    observed: Any = res.get("observed_value")
    details: dict[str, Any] = {
        "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
        "gx_expectation": f"{config.type}({config.kwargs.get('column')})",
        "unexpected_percent": res.get("unexpected_percent"),
        "missing_count": res.get("missing_count"),
    }
    if check.level == "row":
        details["sql_router_count"] = summary[check.key]
        details["rule"] = config.description
        if unexpected != summary[check.key]:
            drift.append(f"{label}: GX unexpected_count={unexpected}, SQL router={summary[check.key]}")
        observed = f"{unexpected} of {element_count} rows unexpected"
    elif check.key == "day_ratio":
        days, days_with_history = day_rows
        details["days"] = days
        details["days_skipped_no_history"] = days - days_with_history
        details["failing_days"] = [
            {"event_date": str(d), "rows": n, "trailing_mean": m, "ratio": r, "history_days": h}
            for d, n, m, r, h in bad_days
        ]
        if unexpected != len(bad_days):
            drift.append(f"{label}: GX unexpected_count={unexpected}, SQL={len(bad_days)}")
        observed = (
            _json(details["failing_days"])
            if bad_days
            else f"{days_with_history} day(s) within bounds, {days - days_with_history} skipped (no history)"
        )
        for d, n, m, r, h in bad_days:
            failures.append(
                f"{label}: day {d} has {n} rows vs trailing mean {m:.1f} over {h} earlier day(s): "
                f"observed ratio {r:.4f} outside [{rules.min_day_ratio}, {rules.max_day_ratio}]"
            )
        if not result.success and not bad_days:
            failures.append(f"{label}: failed (observed {res})")
    else:  # duplicate_rate
        element_count = summary["kept"]
        if not result.success and not element_count:
            # GX's mean over no rows is undefined and fails; say why instead of "None above max".
            failures.append(f"{label}: batch has no rows, duplicate rate undefined (observed {observed})")
        elif not result.success:
            failures.append(
                f"{label}: observed duplicate rate {observed} of {element_count} rows above max {rules.max_duplicate_rate}"
            )
    record = {
        "expectation": check.rule,
        "column_name": check.column,
        "level": check.level,
        "success": bool(result.success),
        "observed_value": None if observed is None else str(observed),
        "unexpected_count": unexpected,
        "element_count": element_count,
        "details": _json(details),
    }
    return record, failures, drift


def validate_scratch(
    scratch: Path, run_id: str, batch: str, profile: SourceProfile, home: Home,
    day: date | tuple[date, date] | None = None, whole_day: bool = False,
) -> ValidationOutcome:
    """Validate one staged file of ``profile``; a table-level failure refuses it."""
    rules = rules_for(profile, day, whole_day)
    # The history comes from the working database, attached read-only: not while this process writes it.
    (home.root / "locks").mkdir(parents=True, exist_ok=True)
    asked = time.perf_counter()
    with WRITE_LOCK, GX_LOCK:
        # Files staged concurrently take turns here: the wait is not validation work.
        waited = time.perf_counter() - asked
        outcome = validate_batch(scratch, run_id=run_id, batch=batch, rules=rules,
                                 history_db=home.db if home.db.exists() else None)
    outcome.timings["lock_wait"] = waited
    if not outcome.ok:
        raise ValidationRefusedError(f"{batch}: validation failed: {'; '.join(outcome.failures)}")
    return outcome


def docs_lock(home: Home) -> FileLock:
    """GX's file stores under home/gx are shared by every process on this home: one writer at a time."""
    (home.root / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(home.root / "locks" / "gx.lock", timeout=lock_wait_seconds())


# Thin Prefect wrapper: a validation is cheap to redo and its inputs are paths, so no caching and
# no retries (a failure here is a data or suite problem, not a transient one).
validate_batch_task = task(name="validate-batch", retries=0, cache_policy=NO_CACHE)(validate_batch)
