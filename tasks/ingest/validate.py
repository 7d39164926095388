"""Great Expectations validation of one ingest batch, where the data lives (the DuckDB file).

Flow of :func:`validate_batch` (the ingest has closed its connection before calling):

1. Plain DuckDB connection: the view ``staging.validate_rows`` (non-duplicate rows), the SQL router
   ``staging.rejects`` (one flag per row-level check + first-wins reason), daily history from
   ``raw.clicks`` and ``staging.validate_day_counts``. Connection closed.
2. GX (SQL datasource on the same file through duckdb-engine, made to work by
   :mod:`tasks.ingest.gx_duckdb`): one checkpoint over three suites -- row-level checks on
   ``staging.validate_rows``, the day-volume check on ``staging.validate_day_counts``, the duplicate
   rate on ``staging.batch``. Every DuckDB engine GX opened is released afterwards, even on error.
3. Plain connection again: any GX exception -> :class:`GXExecutionError`; GX's unexpected_count for
   every row-level expectation must equal the router's per-check count, else
   :class:`SuiteRouterDriftError`; then quarantine.clicks and ops.validation_results in one
   transaction. ``staging.rejects`` stays for the caller (accepted = not duplicate, not rejected).

Performance: GX resolves all row-level unexpected counts in ONE aggregate query. With SUMMARY GX
also fetches up to ``partial_unexpected_count`` sample values per expectation; for a *passing*
expectation that LIMIT-n query scans the whole table (a regex over every row), so we ask for 0
samples: the query becomes ``LIMIT 0`` and costs nothing. Failing rows, with their raw text, are in
quarantine.clicks instead. Never COMPLETE (a bad day can be millions of rows).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common.sqlfiles import sql
from tasks.common.warehouse import wait_for_file_lock

# Non-empty, no C0/C1 control characters (NUL included), at most 256 characters. Anything else --
# quotes, semicolons, SQL text, Hangul, emoji -- is a valid id and passes byte-exact.
DEFAULT_ID_REGEX = r"^[^\x00-\x1F\x7F-\x9F]{1,256}$"
DEFAULT_EVENT_TYPES = frozenset({"click", "view", "cart", "purchase", "rating"})
# Columns the SQL router can check for NULL (rejects.sql has one flag per column, gated by $required).
NULLABLE_CHECK_COLUMNS = ("session_id", "user_id", "item_id", "event_type", "category", "ts")
ID_COLUMNS = ("session_id", "user_id", "item_id")

# See the module docstring: 0 sample values keeps GX at one scan of the batch.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}

DATASOURCE = "clickrec_staging"
SUITE_ROWS, SUITE_DAYS, SUITE_BATCH = "clickrec_batch_rows", "clickrec_batch_days", "clickrec_batch_table"


class BatchContractError(RuntimeError):
    """staging.batch (or the warehouse schema) is not what the ingest contract promises."""


class GXExecutionError(RuntimeError):
    """An expectation raised inside GX (missing column, SQL error...): its result means nothing."""


class SuiteRouterDriftError(RuntimeError):
    """GX's unexpected_count differs from the SQL router's count for the same check."""


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ValidationRules:
    """What a valid batch looks like. Pass ``max_ts`` explicitly for reproducible runs."""

    min_ts: datetime = datetime(1995, 1, 1)
    max_ts: datetime = field(default_factory=lambda: _utc_now() + timedelta(days=1))
    id_regex: str = DEFAULT_ID_REGEX
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
    data_docs: Path | None
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for benchmarks


@dataclass(frozen=True)
class _Check:
    """A row- or table-level expectation and the router flag (or table check) it corresponds to."""

    key: str
    level: str
    expectation: Any


def _row_checks(rules: ValidationRules) -> list[_Check]:
    import great_expectations.expectations as gxe

    checks = [
        _Check(f"null_{c}", "row", gxe.ExpectColumnValuesToNotBeNull(column=c))
        for c in NULLABLE_CHECK_COLUMNS
        if c in rules.required
    ]
    checks.append(
        _Check("range_ts", "row", gxe.ExpectColumnValuesToBeBetween(column="ts", min_value=rules.min_ts, max_value=rules.max_ts))
    )
    checks += [
        _Check(f"regex_{c}", "row", gxe.ExpectColumnValuesToMatchRegex(column=c, regex=rules.id_regex))
        for c in ID_COLUMNS
    ]
    checks.append(
        _Check("set_event_type", "row", gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(rules.event_types)))
    )
    return checks


def _day_checks(rules: ValidationRules) -> list[_Check]:
    import great_expectations.expectations as gxe

    return [
        _Check(
            "day_ratio",
            "table",
            gxe.ExpectColumnValuesToBeBetween(column="ratio", min_value=rules.min_day_ratio, max_value=rules.max_day_ratio),
        )
    ]


def _batch_checks(rules: ValidationRules) -> list[_Check]:
    import great_expectations.expectations as gxe

    # Mean of the 0/1 duplicate flag over all rows read = the batch's duplicate rate, computed by GX.
    return [
        _Check(
            "duplicate_rate",
            "table",
            gxe.ExpectColumnMeanToBeBetween(column="is_duplicate", min_value=0.0, max_value=rules.max_duplicate_rate),
        )
    ]


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    from tasks.common.warehouse import scratch_config

    return duckdb.connect(str(db_path), config=scratch_config())


def _prepare(
    con: duckdb.DuckDBPyConnection, rules: ValidationRules, history_db: Path | None, timings: dict[str, float]
) -> None:
    """Views, router and day counts: everything GX will read, computed before GX opens the file."""
    mark = time.perf_counter()
    con.execute(sql("validate/prepare"))
    con.execute(
        sql("validate/rejects"),
        {
            "required": list(rules.required),
            "min_ts": rules.min_ts,
            "max_ts": rules.max_ts,
            "id_regex": rules.id_regex,
            "event_types": sorted(rules.event_types),
        },
    )
    timings["router"] = time.perf_counter() - mark
    mark = time.perf_counter()
    con.execute(sql("validate/batch_days"), {"day_from": rules.day, "day_to": rules.day_to or rules.day})
    con.execute(sql("validate/history_init"))
    window = {"trailing_days": rules.trailing_days}
    if history_db is not None:
        # Another process may hold the warehouse read-write for a moment: wait like every other opener.
        wait_for_file_lock(lambda: con.execute(sql("validate/attach_history"), {"path": str(history_db)}), history_db)
        try:
            if con.execute(sql("validate/raw_clicks_exists"), {"database": "history"}).fetchone()[0]:
                con.execute(sql("validate/history_attached"), window)
        finally:
            con.execute(sql("validate/detach_history"))
    else:
        database = con.execute(sql("validate/current_database")).fetchall()[0][0]
        if con.execute(sql("validate/raw_clicks_exists"), {"database": database}).fetchone()[0]:
            con.execute(sql("validate/history_local"), window)
    con.execute(sql("validate/day_counts"), window)
    timings["day_counts"] = time.perf_counter() - mark


def _exception_messages(result: Any) -> list[str]:
    """Raised exceptions inside one GX result. exception_info is either one flat dict or a dict of
    them keyed by metric id, depending on where GX caught the error."""
    info = result.exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]


def _run_gx(
    db_path: Path, run_name: str, gx_dir: Path | None, suites: dict[str, list[_Check]]
) -> tuple[dict[str, list[Any]], Path | None]:
    """Run the three suites in one checkpoint; return GX results per suite name, and the docs index."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from tasks.ingest.gx_duckdb import ensure_duckdb_support, release_duckdb_engines

    ensure_duckdb_support()
    try:
        if gx_dir is not None:
            gx_dir.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
        else:
            context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)

        datasource = context.data_sources.add_or_update_sql(
            name=DATASOURCE, connection_string=f"duckdb:///{db_path.resolve()}"
        )
        assets = {
            SUITE_ROWS: sql("validate/gx_rows_asset"),
            SUITE_DAYS: sql("validate/gx_days_asset"),
            SUITE_BATCH: sql("validate/gx_duplicates_asset"),
        }
        definitions = []
        for suite_name, checks in suites.items():
            if suite_name in {a.name for a in datasource.assets}:
                datasource.delete_asset(suite_name)
            asset = datasource.add_query_asset(name=suite_name, query=assets[suite_name])
            batch = asset.add_batch_definition_whole_table("whole")
            suite = gx.ExpectationSuite(name=suite_name)
            for check in checks:
                check.expectation.meta = {"check": check.key, "level": check.level}
                suite.add_expectation(check.expectation)
            suite = context.suites.add_or_update(suite)
            definitions.append(
                context.validation_definitions.add_or_update(
                    gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
                )
            )
        actions = [UpdateDataDocsAction(name="data_docs")] if gx_dir is not None else []
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name="clickrec_batch", validation_definitions=definitions, actions=actions, result_format=RESULT_FORMAT
            )
        )
        run = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
        by_suite: dict[str, list[Any]] = {}
        for suite_result in run.run_results.values():
            by_suite[suite_result.suite_name] = list(suite_result.results)
        _raise_on_gx_errors(run_name, by_suite, suites)
        docs = None
        if gx_dir is not None:
            index = next(iter(context.get_docs_sites_urls()), {}).get("site_url")
            docs = Path(index.removeprefix("file://")) if index else None
        return by_suite, docs
    finally:
        # The caller reconnects right after us; GX's connections must be gone, error or not.
        release_duckdb_engines(db_path)


def _raise_on_gx_errors(run_name: str, by_suite: dict[str, list[Any]], suites: dict[str, list[_Check]]) -> None:
    """A result whose metric raised is neither a pass nor a fail: never let it through as either."""
    errors = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')}): {message}"
        for results in by_suite.values()
        for r in results
        for message in _exception_messages(r)
    ]
    if errors:
        raise GXExecutionError(f"{run_name}: Great Expectations raised while validating: " + " | ".join(errors))
    partial = sorted(name for name in suites if len(by_suite.get(name, [])) != len(suites[name]))
    if partial:
        raise GXExecutionError(f"{run_name}: GX returned no or partial results for suites {partial}")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def validate_batch(
    db_path: Path,
    run_id: str,
    batch: str,
    rules: ValidationRules,
    gx_dir: Path | None = None,
    history_db: Path | None = None,
) -> ValidationOutcome:
    """Validate ``staging.batch`` in ``db_path`` (see module docstring).

    ``history_db``: the warehouse whose ``raw.clicks`` gives the day-volume history when
    ``db_path`` is a separate scratch database; default: ``raw.clicks`` in ``db_path``. Raises
    :class:`GXExecutionError` if any expectation raised, :class:`SuiteRouterDriftError` if GX and
    the SQL router disagree. No connection to ``db_path`` may be open in this process meanwhile.
    """
    started = time.perf_counter()
    row_checks, day_checks, batch_checks = _row_checks(rules), _day_checks(rules), _batch_checks(rules)
    suites = {SUITE_ROWS: row_checks, SUITE_DAYS: day_checks, SUITE_BATCH: batch_checks}

    timings: dict[str, float] = {}
    con = _connect(db_path)
    try:
        _prepare(con, rules, history_db, timings)
    except duckdb.Error as exc:
        raise BatchContractError(
            f"{batch}: cannot prepare validation of staging.batch in {db_path} (ingest contract, or history db locked?): {exc}"
        ) from exc
    finally:
        con.close()

    mark = time.perf_counter()
    # GX's file stores refuse '/' and '\\' in run names; batch names are file names.
    run_name = re.sub(r"[^A-Za-z0-9._=-]", "_", f"{run_id}__{batch}")
    by_suite, docs = _run_gx(db_path, run_name, gx_dir, suites)
    timings["gx"] = time.perf_counter() - mark
    mark = time.perf_counter()

    con = _connect(db_path)
    try:
        counts_row = con.execute(sql("validate/reject_counts"))
        names = [d[0] for d in counts_row.description]
        sql_counts = dict(zip(names, counts_row.fetchone(), strict=True))
        rows_read, rows_duplicate, rows_checked, rows_rejected = con.execute(sql("validate/batch_counts")).fetchone()
        bad_days = con.execute(
            sql("validate/day_failures"), {"min_ratio": rules.min_day_ratio, "max_ratio": rules.max_day_ratio}
        ).fetchall()
        day_rows = con.execute(sql("validate/day_check_counts")).fetchall()[0]

        records, failures, drift = [], [], []
        validated_at = _utc_now()
        for suite_name, checks in suites.items():
            for check, result in zip(checks, _ordered(by_suite[suite_name], checks), strict=True):
                record, failure, drift_msg = _record(check, result, sql_counts, bad_days, day_rows, rules, rows_read)
                records.append(record | {"run_id": run_id, "batch": batch, "validated_at": validated_at})
                failures += failure
                drift += drift_msg
        if drift:
            raise SuiteRouterDriftError(f"{batch}: GX suite and SQL router disagree: " + "; ".join(drift))

        con.begin()
        con.execute(sql("validate/quarantine_clear"), {"run_id": run_id})
        con.execute(
            sql("validate/quarantine_insert"), {"run_id": run_id, "quarantined_at": validated_at}
        )
        con.execute(sql("validate/clear_results"), {"run_id": run_id, "batch": batch})
        con.executemany(sql("validate/store_result"), records)
        con.commit()
    finally:
        con.close()

    return ValidationOutcome(
        ok=not failures,
        failures=failures,
        rows_read=rows_read,
        rows_duplicate=rows_duplicate,
        rows_checked=rows_checked,
        rows_rejected=rows_rejected,
        reject_counts={c.key: sql_counts[c.key] for c in row_checks},
        results=records,
        data_docs=docs,
        seconds=time.perf_counter() - started,
        timings=timings | {"store": time.perf_counter() - mark},
    )


def _ordered(results: Sequence[Any], checks: Sequence[_Check]) -> list[Any]:
    """GX results in the order of ``checks``, matched on the ``check`` key we put in meta."""
    by_key = {(r.expectation_config.meta or {}).get("check"): r for r in results}
    missing = [c.key for c in checks if c.key not in by_key]
    if missing:
        raise GXExecutionError(f"GX results missing for checks {missing}")
    return [by_key[c.key] for c in checks]


def _record(
    check: _Check,
    result: Any,
    sql_counts: dict[str, int],
    bad_days: list[tuple],
    day_rows: tuple[int, int],
    rules: ValidationRules,
    rows_read: int,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """One ops.validation_results row, the table-level failure messages, the drift messages."""
    config = result.expectation_config
    res = result.result or {}
    name, column = config.type, config.kwargs.get("column")
    label = f"{name}({column})"
    failures: list[str] = []
    drift: list[str] = []
    unexpected = res.get("unexpected_count")
    element_count = res.get("element_count")
    if unexpected is None and element_count == 0:
        unexpected = 0  # GX sums over zero rows give NULL; nothing checked means nothing unexpected
    observed: Any = res.get("observed_value")
    details: dict[str, Any] = {
        "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
        "unexpected_percent": res.get("unexpected_percent"),
        "missing_count": res.get("missing_count"),
    }

    if check.level == "row":
        details["sql_router_count"] = sql_counts[check.key]
        if unexpected != sql_counts[check.key]:
            drift.append(f"{label}: GX unexpected_count={unexpected}, SQL router={sql_counts[check.key]}")
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
        element_count = rows_read
        if not result.success and rows_read == 0:
            # GX's mean over zero rows is undefined and fails; say why instead of "None above max".
            failures.append(f"{label}: batch has no rows, duplicate rate undefined (observed {observed})")
        elif not result.success:
            failures.append(
                f"{label}: observed duplicate rate {observed} of {rows_read} rows above max {rules.max_duplicate_rate}"
            )
    record = {
        "expectation": name,
        "column_name": column,
        "level": check.level,
        "success": bool(result.success),
        "observed_value": None if observed is None else str(observed),
        "unexpected_count": unexpected,
        "element_count": element_count,
        "details": _json(details),
    }
    return record, failures, drift


# Thin Prefect wrapper: a validation is cheap to redo and its inputs are paths, so no caching and
# no retries (a failure here is a data or suite problem, not a transient one).
validate_batch_task = task(name="validate-batch", retries=0, cache_policy=NO_CACHE)(validate_batch)
