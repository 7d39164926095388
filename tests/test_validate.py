"""Great Expectations batch validation on real DuckDB files with real GX runs (no mocks).

Benchmark (not a test): ``.venv/bin/python tests/test_validate.py bench --rows 10000000``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prefect.cache_policies import NO_CACHE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.common.sqlfiles import sql  # noqa: E402
from tasks.ingest.validate import (  # noqa: E402
    SUITE_ROWS,
    BatchContractError,
    GXExecutionError,
    ValidationRules,
    _Check,
    _run_gx,
    validate_batch,
    validate_batch_task,
)

# Fixed clock: the default max_ts is "now + 1 day", which would make results depend on the date.
RULES = ValidationRules(max_ts=datetime(2026, 1, 1))
DAY = date(2024, 3, 1)
BATCH_COLUMNS = (
    "source_file", "source_row", "raw_session_id", "raw_user_id", "raw_item_id", "raw_event_type",
    "raw_category", "raw_ts", "session_id", "user_id", "item_id", "event_type", "category", "ts",
    "event_date", "is_duplicate",
)  # fmt: skip
BATCH_DDL = """
CREATE OR REPLACE TABLE staging.batch (
    source_file VARCHAR, source_row BIGINT, raw_session_id VARCHAR, raw_user_id VARCHAR,
    raw_item_id VARCHAR, raw_event_type VARCHAR, raw_category VARCHAR, raw_ts VARCHAR,
    session_id VARCHAR, user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, category VARCHAR,
    ts TIMESTAMP, event_date DATE, is_duplicate BOOLEAN)
"""


def row(n: int, **over: Any) -> dict[str, Any]:
    """A valid staged row; ``over`` replaces typed values (raw text follows unless given)."""
    r: dict[str, Any] = {
        "source_file": "day.csv", "source_row": n, "session_id": f"s{n}", "user_id": f"u{n}",
        "item_id": f"i{n}", "event_type": "click", "category": None,
        "ts": datetime(DAY.year, DAY.month, DAY.day, 12) + timedelta(seconds=n), "is_duplicate": False,
    }  # fmt: skip
    r.update({k: v for k, v in over.items() if not k.startswith("raw_")})
    for col in ("session_id", "user_id", "item_id", "event_type", "category"):
        r[f"raw_{col}"] = over.get(f"raw_{col}", r[col])
    r["raw_ts"] = over.get("raw_ts", r["ts"].isoformat() if r["ts"] else None)
    r["event_date"] = r["ts"].date() if r["ts"] else None
    return r


def make_db(path: Path, rows: list[dict[str, Any]], history_per_day: int = 0) -> Path:
    """Warehouse schema + staging.batch; optionally 7 earlier days of raw.clicks history."""
    con = duckdb.connect(str(path))
    try:
        con.execute(sql("warehouse/schema"))
        con.execute(BATCH_DDL)
        if rows:
            con.executemany(
                "INSERT INTO staging.batch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[r[c] for c in BATCH_COLUMNS] for r in rows],
            )
        if history_per_day:
            con.execute(
                """INSERT INTO raw.clicks (session_id, user_id, item_id, event_type, category, ts, event_date, source_file, source_row, run_id, ingested_at)
                   SELECT 's' || i, NULL, 'i' || i, 'click', NULL, ts, CAST(ts AS DATE), 'old.csv', i, 'old', ts
                   FROM (SELECT i, TIMESTAMP '2024-02-23 08:00' + INTERVAL 1 DAY * (i // $n) AS ts
                         FROM range(7 * $n) r(i))""",
                {"n": history_per_day},
            )
    finally:
        con.close()
    return path


def query(path: Path, q: str, params: dict[str, Any] | None = None) -> list[tuple]:
    # Default config on purpose: this only works if validate_batch left no connection behind.
    con = duckdb.connect(str(path))
    try:
        return con.execute(q, params or {}).fetchall()
    finally:
        con.close()


def test_good_batch_passes_writes_results_builds_docs_and_releases_file(tmp_path: Path) -> None:
    db = make_db(tmp_path / "clickrec.duckdb", [row(n) for n in range(1, 21)])
    out = validate_batch(db, "r1", "day.csv", RULES, gx_dir=tmp_path / "gx")

    assert out.ok and out.failures == []
    assert (out.rows_read, out.rows_checked, out.rows_rejected) == (20, 20, 0)
    assert set(out.reject_counts.values()) == {0}
    # 3 not-null + ts range + 3 regex + event set (row level), day volume + duplicate rate (table level).
    stored = query(db, "SELECT level, expectation, column_name, success, element_count FROM ops.validation_results "
                       "WHERE run_id = 'r1' AND batch = 'day.csv' ORDER BY ALL")  # fmt: skip
    assert len(stored) == 10 and all(s[3] for s in stored)
    assert [s[0] for s in stored].count("table") == 2
    assert ("row", "expect_column_values_to_match_regex", "item_id", True, 20) in stored
    assert query(db, "SELECT count(*) FROM quarantine.clicks") == [(0,)]
    # No raw.clicks history: the day check is skipped, and says so.
    day = next(r for r in out.results if r["column_name"] == "ratio")
    assert day["success"] and "1 skipped (no history)" in day["observed_value"]
    assert out.data_docs is not None and out.data_docs.is_file()
    assert "clickrec_batch_rows" in out.data_docs.read_text()


def test_bad_rows_are_quarantined_with_reasons_and_gx_counts_equal_sql(tmp_path: Path) -> None:
    rows = [row(n) for n in range(1, 21)]
    rows[1] = row(2, ts=None, raw_ts="2014-13-45")
    rows[2] = row(3, ts=datetime(2500, 1, 1))
    rows[3] = row(4, item_id="ab\x00cd")
    rows[4] = row(5, session_id="s\x01")
    rows[5] = row(6, event_type="bogus")
    rows[6] = row(7, ts=None, raw_ts="nope", event_type="bogus")  # fails two checks: first one wins
    rows[7] = row(8, user_id="u\x7f")
    rows[8] = row(9, item_id="x" * 257)
    rows[9] = row(10, ts=None, raw_ts="")
    rows[10] = row(11, ts=None, raw_ts="dup", is_duplicate=True)  # duplicates are dropped, not quarantined
    rows[11] = row(12, item_id="y" * 256, user_id=None)  # boundary and anonymous user: valid
    db = make_db(tmp_path / "clickrec.duckdb", rows)

    out = validate_batch(db, "r2", "day.csv", RULES, gx_dir=None)

    assert out.ok  # row-level failures are quarantined, they do not fail the run
    expected = {"null_session_id": 0, "null_item_id": 0, "null_ts": 3, "range_ts": 1, "regex_session_id": 1,
                "regex_user_id": 1, "regex_item_id": 2, "set_event_type": 2}  # fmt: skip
    assert out.reject_counts == expected
    gx_counts = {(r["expectation"], r["column_name"]): r["unexpected_count"] for r in out.results if r["level"] == "row"}
    assert gx_counts[("expect_column_values_to_not_be_null", "ts")] == 3
    assert gx_counts[("expect_column_values_to_match_regex", "item_id")] == 2
    assert gx_counts[("expect_column_values_to_be_in_set", "event_type")] == 2
    assert sorted(gx_counts.values()) == sorted(expected.values())
    for r in out.results:
        if r["level"] == "row":
            assert json.loads(r["details"])["sql_router_count"] == r["unexpected_count"]

    quarantined = dict(query(db, "SELECT source_row, reason FROM quarantine.clicks WHERE run_id = 'r2'"))
    assert sorted(quarantined) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert quarantined[2] == "expect_column_values_to_not_be_null(ts): unparseable timestamp '2014-13-45'"
    assert quarantined[3].startswith("expect_column_values_to_be_between(ts): 2500-01-01 00:00:00 outside")
    assert quarantined[4].startswith("expect_column_values_to_match_regex(item_id)")
    assert quarantined[5].startswith("expect_column_values_to_match_regex(session_id)")
    assert quarantined[6] == "expect_column_values_to_be_in_set(event_type): unknown event_type 'bogus'"
    assert quarantined[7].startswith("expect_column_values_to_not_be_null(ts): unparseable timestamp 'nope'")
    assert quarantined[8].startswith("expect_column_values_to_match_regex(user_id)")
    assert "length 257" in quarantined[9]
    assert quarantined[10] == "expect_column_values_to_not_be_null(ts): missing timestamp"
    # Raw text is kept byte-exact, NUL included.
    assert query(db, "SELECT raw_item_id FROM quarantine.clicks WHERE source_row = 4") == [("ab\x00cd",)]
    stored = query(db, "SELECT sum(unexpected_count) FILTER (WHERE level = 'row'), count(*) "
                       "FROM ops.validation_results WHERE run_id = 'r2'")  # fmt: skip
    assert stored == [(sum(expected.values()), 10)]

    # A retry of the same run replaces, never duplicates, its quarantine and result rows.
    validate_batch(db, "r2", "day.csv", RULES, gx_dir=None)
    assert query(db, "SELECT count(*) FROM quarantine.clicks") == [(9,)]
    assert query(db, "SELECT count(*) FROM ops.validation_results") == [(10,)]


def test_hostile_but_valid_ids_pass_byte_exact(tmp_path: Path) -> None:
    ids = ["'; DROP TABLE raw.clicks; --", 'say "hi"', "semi;colon", "O'Brien", "한국어-세션", "😀🎉",
           "%_\\", "  spaced  ", "z" * 256, "SELECT * FROM ops.runs"]  # fmt: skip
    rows = [row(n + 1, session_id=v, user_id=v, item_id=v) for n, v in enumerate(ids)]
    db = make_db(tmp_path / "clickrec.duckdb", rows)

    out = validate_batch(db, "r3", "day.csv", RULES, gx_dir=None)

    assert out.ok and out.rows_rejected == 0 and set(out.reject_counts.values()) == {0}
    assert [r[0] for r in query(db, "SELECT item_id FROM staging.validate_rows ORDER BY source_row")] == ids
    assert query(db, "SELECT count(*) FROM staging.rejects") == [(0,)]
    assert query(db, "SELECT count(*) FROM raw.clicks") == [(0,)]  # the table is still there


def test_day_far_below_trailing_mean_fails_with_expectation_and_observed_value(tmp_path: Path) -> None:
    db = make_db(tmp_path / "clickrec.duckdb", [row(n) for n in range(1, 11)], history_per_day=100)

    out = validate_batch(db, "r4", "day.csv", RULES, gx_dir=None)

    assert not out.ok
    assert len(out.failures) == 1
    message = out.failures[0]
    assert message.startswith("expect_column_values_to_be_between(ratio): day 2024-03-01 has 10 rows")
    assert "trailing mean 100.0 over 7 earlier day(s)" in message and "observed ratio 0.1000" in message
    stored = query(db, "SELECT success, unexpected_count, observed_value FROM ops.validation_results "
                       "WHERE run_id = 'r4' AND level = 'table' AND column_name = 'ratio'")  # fmt: skip
    assert stored[0][0] is False and stored[0][1] == 1 and '"ratio": 0.1' in stored[0][2]


def test_history_from_separate_warehouse_within_bounds_passes(tmp_path: Path) -> None:
    warehouse = make_db(tmp_path / "clickrec.duckdb", [], history_per_day=100)
    scratch = make_db(tmp_path / "scratch.duckdb", [row(n) for n in range(1, 81)])

    out = validate_batch(scratch, "r5", "day.csv", RULES, gx_dir=None, history_db=warehouse)

    assert out.ok, out.failures
    day = next(r for r in out.results if r["column_name"] == "ratio")
    assert day["observed_value"] == "1 day(s) within bounds, 0 skipped (no history)"
    assert query(warehouse, "SELECT count(*) FROM raw.clicks") == [(700,)]  # read-only, and released


def test_duplicate_rate_above_max_fails(tmp_path: Path) -> None:
    rows = [row(n, is_duplicate=n > 4) for n in range(1, 11)]
    db = make_db(tmp_path / "clickrec.duckdb", rows)

    out = validate_batch(db, "r6", "day.csv", RULES, gx_dir=None)

    assert not out.ok and out.rows_duplicate == 6 and out.rows_checked == 4
    assert out.failures == [
        "expect_column_mean_to_be_between(is_duplicate): observed duplicate rate 0.6 of 10 rows above max 0.5"
    ]


def test_empty_batch_fails_on_undefined_duplicate_rate_only(tmp_path: Path) -> None:
    db = make_db(tmp_path / "clickrec.duckdb", [])

    out = validate_batch(db, "r9", "empty.csv", RULES, gx_dir=None)

    assert (out.rows_read, out.rows_rejected) == (0, 0)
    assert out.failures == [
        "expect_column_mean_to_be_between(is_duplicate): batch has no rows, duplicate rate undefined (observed None)"
    ]


def test_expectation_that_raises_is_a_clear_error_and_releases_the_file(tmp_path: Path) -> None:
    import great_expectations.expectations as gxe

    db = make_db(tmp_path / "clickrec.duckdb", [row(n) for n in range(1, 6)])
    query(db, sql("validate/prepare"))
    broken = {SUITE_ROWS: [_Check("null_nope", "row", gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"))]}

    with pytest.raises(GXExecutionError, match=r"expect_column_values_to_not_be_null\(no_such_column\).*no_such_column"):
        _run_gx(db, "r7/day.csv", None, broken)
    assert query(db, "SELECT count(*) FROM staging.validate_rows") == [(5,)]


def test_batch_missing_a_contract_column_is_a_clear_error(tmp_path: Path) -> None:
    db = make_db(tmp_path / "clickrec.duckdb", [row(n) for n in range(1, 6)])
    query(db, "ALTER TABLE staging.batch DROP COLUMN event_type")

    with pytest.raises(BatchContractError, match="event_type"):
        validate_batch(db, "r8", "day.csv", RULES, gx_dir=None)
    assert query(db, "SELECT count(*) FROM ops.validation_results") == [(0,)]


def test_duckdb_fix_is_idempotent_and_active() -> None:
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    from tasks.ingest.gx_duckdb import ensure_duckdb_support

    ensure_duckdb_support()
    ensure_duckdb_support()
    assert [d for d in see._PERSISTED_CONNECTION_DIALECTS if d == "duckdb"] == ["duckdb"]
    assert see._dialect_requires_persisted_connection(connection_string="duckdb:////tmp/x.duckdb")


def test_rules_reject_unknown_required_column_and_task_is_uncached() -> None:
    with pytest.raises(ValueError, match="not checkable"):
        ValidationRules(required=("session_id", "price"))
    assert validate_batch_task.retries == 0
    assert validate_batch_task.cache_policy is NO_CACHE


def _bench(rows: int, db: Path, repeat: int) -> None:
    """10M-row staging.batch generated by DuckDB SQL, then validate_batch timed (GX import excluded)."""
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    started = time.perf_counter()
    con.execute(sql("warehouse/schema"))
    con.execute(sql("validate/bench_batch"), {"rows": rows})
    con.close()
    print(f"generated {rows} rows in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    import great_expectations  # noqa: F401  (import cost is per process, report it apart)

    print(f"import great_expectations: {time.perf_counter() - started:.1f}s")
    for _ in range(repeat):
        out = validate_batch(db, "bench", "bench.csv", RULES, gx_dir=None)
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in out.timings.items())
        print(f"validate_batch: {out.seconds:.2f}s ({phases}); ok={out.ok} read={out.rows_read} "
              f"rejected={out.rows_rejected}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["bench"])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/clickrec-validate-bench.duckdb"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    _bench(args.rows, args.db, args.repeat)
