"""Great Expectations validation of staged files: real landing files through the real one pass
(``sql/staging/batch.sql``) into real scratch DuckDB files, real GX runs (no mocks)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prefect.cache_policies import NO_CACHE

from tasks.common.config import Home
from tasks.common.profiles import parse_profile
from tasks.common.sqlfiles import sql
from tasks.ingest.errors import ValidationRefusedError
from tasks.ingest.gx_suite import SUITE_ROWS, Check, GXExecutionError, run_suites
from tasks.ingest.run import ingest
from tasks.ingest.validate import (
    BatchContractError,
    StagedBatch,
    SuiteRouterDriftError,
    ValidationRules,
    rules_for,
    validate_files,
    validate_run_task,
    validate_staged,
)

DAY = date(2024, 3, 1)
PROFILE = parse_profile({
    "name": "events", "format": "csv", "header": True, "delimiter": ",",
    "fields": {"session_id": "s", "user_id": "u", "item_id": "i", "event_type": "e", "ts": "t"},
    "timestamp": {"kind": "iso8601"},
})


def line(n: int, s: str | None = None, u: str | None = None, i: str | None = None, e: str = "click",
         t: str | None = None) -> str:
    ts = t if t is not None else (datetime(DAY.year, DAY.month, DAY.day, 12) + timedelta(seconds=n)).isoformat() + "Z"
    return ",".join([s if s is not None else f"s{n}", u if u is not None else f"u{n}", i if i is not None else f"i{n}", e, ts])


def landing(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s,u,i,e,t\n" + "\n".join(lines) + "\n")
    return path


def q(db: Path, query: str, params: dict[str, Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, params or {}).fetchall()
    finally:
        con.close()


class Capture:
    """A validate hook for ingest: runs the real validation of the run and keeps each file's outcome
    (the scratch files are gone once the run ends)."""

    def __init__(self, tamper: str | None = None) -> None:
        self.outcomes: list[Any] = []
        self.tamper = tamper

    def __call__(self, files, run_id, profile, home, day, whole_day):
        for f in files if self.tamper else []:
            con = duckdb.connect(str(f.scratch), config={"TimeZone": "UTC", "autoinstall_known_extensions": False,
                                                        "force_compression": "uncompressed", "memory_limit": "4GB"})
            con.execute(self.tamper)
            con.close()
        run = validate_staged(files, run_id, profile, home, day, whole_day)
        self.outcomes += run.outcomes
        return run


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home")


def test_good_file_passes_records_every_expectation_and_builds_docs_once(home, tmp_path):
    f = landing(tmp_path / "day.csv", [line(n) for n in range(1, 21)])
    cap = Capture()
    rep = ingest(home, PROFILE, [f], validate=cap)
    [out] = cap.outcomes
    assert out.ok and out.failures == [] and (out.rows_read, out.rows_checked, out.rows_rejected) == (20, 20, 0)
    assert set(out.reject_counts.values()) == {0}
    # 3 not-null + ts range + 3 id rules + event set (row level), day volume + duplicate rate (table level).
    stored = q(home.db, "SELECT level, expectation, column_name, success, unexpected_count, element_count "
                        "FROM ops.validation_results")
    assert len(stored) == 10 and all(s[3] for s in stored)
    assert [s[0] for s in stored].count("table") == 2
    assert ("row", "expect_column_values_to_match_regex", "item_id", True, 0, 20) in stored
    day = next(r for r in out.results if r["column_name"] == "ratio")
    assert day["success"] and "1 skipped (no history)" in day["observed_value"]
    # The run's Data Docs name the row suite.
    assert rep.data_docs is not None and rep.data_docs.is_file() and home.gx in rep.data_docs.parents
    assert "clickrec_batch_rows" in rep.data_docs.read_text()


def test_bad_rows_are_counted_per_check_by_gx_and_quarantined_with_the_first_reason(home, tmp_path):
    lines = [line(n) for n in range(1, 21)]
    lines[1] = line(2, t="2014-13-45")
    lines[2] = line(3, t="2500-01-01T00:00:00Z")
    lines[3] = line(4, i="ab\x01cd")
    lines[4] = line(5, s="s\x01")
    lines[5] = line(6, e="bogus")
    lines[6] = line(7, t="nope", e="bogus")  # fails two checks: the first one wins the reason
    lines[7] = line(8, u="u\x7f")
    lines[8] = line(9, i="x" * 257)
    lines[9] = line(10, t="")
    lines[10] = line(11, i="y" * 256, u="")  # boundary length and an anonymous user: valid
    f = landing(tmp_path / "day.csv", lines)
    cap = Capture()
    ingest(home, PROFILE, [f], validate=cap)
    [out] = cap.outcomes
    assert out.ok  # row-level failures are quarantined, they do not fail the file
    expected = {"null_session_id": 0, "null_item_id": 0, "null_ts": 3, "range_ts": 1, "regex_session_id": 1,
                "regex_user_id": 1, "regex_item_id": 2, "set_event_type": 2}  # fmt: skip
    assert out.reject_counts == expected
    gx_counts = {(r["expectation"], r["column_name"]): r["unexpected_count"] for r in out.results if r["level"] == "row"}
    assert gx_counts[("expect_column_values_to_not_be_null", "ts")] == 3
    assert gx_counts[("expect_column_values_to_match_regex", "item_id")] == 2
    assert gx_counts[("expect_column_values_to_be_in_set", "event_type")] == 2
    for r in out.results:
        if r["level"] == "row":
            assert json.loads(r["details"])["sql_router_count"] == r["unexpected_count"]
    # Line numbers count the header as line 1.
    quarantined = dict(q(home.db, "SELECT source_row, reason FROM quarantine.clicks"))
    assert sorted(quarantined) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert quarantined[3] == "expect_column_values_to_not_be_null(ts): unparseable timestamp '2014-13-45'"
    assert quarantined[4].startswith("expect_column_values_to_be_between(ts): 2500-01-01 00:00:00 outside")
    assert quarantined[5].startswith("expect_column_values_to_match_regex(item_id)")
    assert quarantined[6].startswith("expect_column_values_to_match_regex(session_id)")
    assert quarantined[7] == "expect_column_values_to_be_in_set(event_type): unknown event_type 'bogus'"
    assert quarantined[8].startswith("expect_column_values_to_not_be_null(ts): unparseable timestamp 'nope'")
    assert quarantined[9].startswith("expect_column_values_to_match_regex(user_id)")
    assert "length 257" in quarantined[10]
    assert quarantined[11] == "expect_column_values_to_not_be_null(ts): missing timestamp"
    assert q(home.db, "SELECT raw_item_id FROM quarantine.clicks WHERE source_row = 5") == [("ab\x01cd",)]
    assert q(home.db, "SELECT count(*) FROM raw.clicks") == [(11,)]


def test_one_checkpoint_serves_every_file_and_each_result_is_that_files(home, tmp_path):
    """GX's datasource and checkpoint are built once and re-pointed at each scratch file: the counts
    must still be each file's own, in either order (a checkpoint left on the first file fails)."""
    from tasks.ingest import gx_suite

    clean = landing(tmp_path / "a" / "clean.csv", [line(n) for n in range(1, 11)])
    dirty = landing(tmp_path / "b" / "dirty.csv", [line(n) for n in range(1, 8)] + [line(8, i=""), line(9, i="x\x01"),
                                                                                   line(10, e="bogus")])
    cap = Capture()
    ingest(home, PROFILE, [clean, dirty], validate=cap)
    built = gx_suite._state["checkpoint"]
    ingest(home, PROFILE, [dirty, clean], validate=cap)
    assert gx_suite._state["checkpoint"] is built  # the same rules: nothing rebuilt for the second run
    assert [o.rows_checked for o in cap.outcomes] == [10, 10, 10, 10]
    bad = {"expect_column_values_to_not_be_null": 1, "expect_column_values_to_match_regex": 1,
           "expect_column_values_to_be_in_set": 1}  # the dirty file: one empty id, one control character, one type
    for outcome, dirty_file in zip(cap.outcomes, [False, True, True, False], strict=True):
        counts = {r["expectation"]: 0 for r in outcome.results if r["level"] == "row"}
        for r in outcome.results:
            if r["level"] == "row":
                counts[r["expectation"]] += r["unexpected_count"]
        assert counts == ({**counts, **bad} if dirty_file else dict.fromkeys(counts, 0))


def test_a_wait_for_another_runs_turn_is_reported_apart_from_validation(home, tmp_path, monkeypatch):
    """Runs of one process (a backfill's days) take turns at validation (the writer lock: the history
    is read from the working database). The turn is not validation work: the run's report gives it as
    validate_wait and leaves it out of validate."""
    import time as time_module
    import types

    from tasks.ingest import run, validate

    held = 1000.0  # seconds another run holds the lock, on a clock this test owns
    clock = types.SimpleNamespace(offset=0.0)
    fake_time = types.SimpleNamespace(perf_counter=lambda: time_module.perf_counter() + clock.offset)

    class TakenTurn:
        """The writer lock as another run leaves it: entering it costs ``held`` seconds."""

        def __enter__(self):
            clock.offset += held
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(validate, "time", fake_time)
    monkeypatch.setattr(run, "time", fake_time)
    monkeypatch.setattr(validate, "WRITE_LOCK", TakenTurn())
    rep = ingest(home, PROFILE, [landing(tmp_path / "day.csv", [line(n) for n in range(1, 6)])])
    assert rep.seconds["validate_wait"] == held
    assert 0 < rep.seconds["validate"] < held  # the validation itself, without the turn


def test_hostile_but_valid_ids_pass_byte_exact(home, tmp_path):
    ids = ["'; DROP TABLE raw.clicks; --", "semi;colon", "O'Brien", "한국어-세션", "😀🎉", "%_\\", "  spaced  ",
           "z" * 256, "SELECT * FROM ops.runs"]  # fmt: skip
    f = landing(tmp_path / "day.csv", [line(n + 1, s=v, u=v, i=v) for n, v in enumerate(ids)])
    cap = Capture()
    ingest(home, PROFILE, [f], validate=cap)
    assert cap.outcomes[0].rows_rejected == 0
    assert [r[0] for r in q(home.db, "SELECT item_id FROM raw.clicks ORDER BY source_row")] == ids


def _history(home: Home, tmp_path: Path, per_day: int) -> None:
    """Seven earlier days of ``per_day`` clicks each, ingested for real."""
    lines = [line(n, t=(datetime(2024, 2, 23, 8) + timedelta(days=n // per_day, seconds=n % per_day)).isoformat() + "Z")
             for n in range(7 * per_day)]
    ingest(home, PROFILE, [landing(tmp_path / "history.csv", lines)])


def test_day_far_below_its_trailing_mean_refuses_a_whole_day_run(home, tmp_path):
    _history(home, tmp_path, 100)
    f = landing(tmp_path / "day.csv", [line(n) for n in range(1, 11)])
    with pytest.raises(ValidationRefusedError) as err:
        ingest(home, PROFILE, [f], day=DAY)
    message = str(err.value)
    assert "expect_column_values_to_be_between(ratio): day 2024-03-01 has 10 rows" in message
    assert "trailing mean 100.0 over 7 earlier day(s)" in message and "observed ratio 0.1000" in message
    assert q(home.db, "SELECT count(*) FROM raw.clicks WHERE event_date = $d", {"d": DAY}) == [(0,)]
    # The same file within bounds passes (history from the warehouse, attached read-only).
    ok = landing(tmp_path / "ok.csv", [line(n) for n in range(1, 81)])
    ingest(home, PROFILE, [ok], day=DAY)
    assert q(home.db, "SELECT count(*) FROM raw.clicks WHERE event_date = $d", {"d": DAY}) == [(80,)]


def test_duplicate_rate_above_max_refuses_the_file(home, tmp_path):
    lines = [line(n) for n in range(1, 5)]
    f = landing(tmp_path / "dups.csv", lines + lines + lines)  # 8 of 12 kept rows repeat an earlier one
    with pytest.raises(ValidationRefusedError, match=r"observed duplicate rate 0\.666\S* of 12 rows above max 0\.5"):
        ingest(home, PROFILE, [f])


def test_one_files_table_failure_refuses_the_run_naming_that_file_only(home, tmp_path):
    """The run's files are validated in one GX run, but a verdict is still each file's: the file with
    too many duplicates is named, the clean one is not, and nothing of either is committed."""
    clean = landing(tmp_path / "clean.csv", [line(n) for n in range(1, 11)])
    dups = [line(n) for n in range(20, 24)]
    dirty = landing(tmp_path / "dups.csv", dups * 3)
    with pytest.raises(ValidationRefusedError) as err:
        ingest(home, PROFILE, [clean, dirty])
    message = str(err.value)
    assert message.startswith("dups.csv: validation failed:") and "clean.csv" not in message
    assert not home.db.exists() or q(home.db, "SELECT count(*) FROM raw.clicks") == [(0,)]


def test_a_file_with_no_kept_rows_is_refused_among_good_ones(home, tmp_path):
    """A file whose every row is filtered has no duplicate rate: it must fail that check (GX ignores
    NULLs, so the asset gives it a rate outside every bound), and GX must count it as SQL does."""
    profile = parse_profile({
        "name": "events", "format": "csv", "header": True, "delimiter": ",",
        "fields": {"session_id": "s", "user_id": "u", "item_id": "i", "event_type": "e", "ts": "t"},
        "timestamp": {"kind": "iso8601"}, "events": {"keep": ["click"]}})
    good = landing(tmp_path / "good.csv", [line(n) for n in range(1, 11)])
    views = landing(tmp_path / "views.csv", [line(n, e="view") for n in range(1, 11)])
    with pytest.raises(ValidationRefusedError) as err:  # not SuiteRouterDriftError: GX counted it too
        ingest(home, profile, [good, views])
    assert str(err.value) == ("views.csv: validation failed: expect_column_values_to_be_between(duplicate_rate): "
                              "batch has no rows, duplicate rate undefined")


def test_gx_and_router_disagreeing_is_an_error_not_a_result(home, tmp_path):
    f = landing(tmp_path / "day.csv", [line(n) for n in range(1, 6)] + [line(6, i="")])
    with pytest.raises(SuiteRouterDriftError, match=r"expect_column_values_to_not_be_null\(item_id\): GX unexpected_count=1, SQL router=0"):
        ingest(home, PROFILE, [f], validate=Capture(tamper="UPDATE staging.summary SET null_item_id = 0"))


def _staged(home: Home, tmp_path: Path) -> Path:
    """A real run validation database, built from a scratch file as the one pass leaves it (kept: the
    hook copies it before clean-up)."""
    keep = tmp_path / "kept.duckdb"

    def copy(files, *args):
        keep.write_bytes(Path(files[0].scratch).read_bytes())
        return validate_staged(files, *args)

    ingest(home, PROFILE, [landing(tmp_path / "day.csv", [line(n) for n in range(1, 6)])], validate=copy)
    db = tmp_path / "run.duckdb"
    validate_files(db, "r7", [StagedBatch("day.csv", keep)], ValidationRules(max_ts=datetime(2100, 1, 1)))
    return db


def test_expectation_that_raises_is_a_clear_error_and_releases_the_file(home, tmp_path):
    import great_expectations.expectations as gxe

    db = _staged(home, tmp_path)
    broken = {SUITE_ROWS: [Check("null_nope", "row", "expect_column_values_to_not_be_null", "no_such_column",
                                 gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"))]}
    with pytest.raises(GXExecutionError, match=r"expect_column_values_to_not_be_null\(no_such_column\).*no_such_column"):
        run_suites(db, "r7/day.csv", broken)
    assert q(db, "SELECT count(*) FROM staging.run_rows") == [(5,)]  # GX let go of the file


def test_a_scratch_without_the_staged_tables_is_a_clear_error(tmp_path):
    db = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(db))
    con.execute(sql("warehouse/schema"))
    con.close()
    with pytest.raises(BatchContractError, match="day.csv: cannot prepare validation of staging.batch"):
        validate_files(tmp_path / "run.duckdb", "r8", [StagedBatch("day.csv", db)],
                       ValidationRules(max_ts=datetime(2100, 1, 1)))


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
    assert validate_run_task.retries == 0
    assert validate_run_task.cache_policy is NO_CACHE
    assert rules_for(PROFILE).id_regex == r"^[^\x00-\x1F\x7F-\x9F]{1,256}$"
    assert rules_for(PROFILE).max_day_ratio == float("inf")  # a file that need not hold whole days


def test_row_checks_come_from_the_column_dictionary(monkeypatch):
    """The suite's row checks are the staging dictionary's (sql/staging/columns.yaml): each has its
    check column in batch.sql, and a check removed from the document leaves the suite."""
    import tasks.ingest.validate as v
    from tasks.common.columns import column_checks
    from tasks.common.sqlfiles import sql as load_sql

    every = v.row_check_keys(v.ValidationRules(required=v.NULLABLE_CHECK_COLUMNS))
    assert every == ["null_session_id", "null_user_id", "null_item_id", "null_event_type", "null_category",
                     "null_ts", "range_ts", "regex_session_id", "regex_user_id", "regex_item_id", "set_event_type"]
    batch = load_sql("staging/batch")
    assert all(f"AS {key}" in batch for key in every)

    declared = dict(column_checks("staging", "raw.clicks"))
    declared["event_type"] = tuple(c for c in declared["event_type"] if c.kind != "accepted_values")
    monkeypatch.setattr(v, "column_checks", lambda layer, name: declared)
    assert "set_event_type" not in v.row_check_keys(v.ValidationRules())
