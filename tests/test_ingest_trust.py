"""Ingest never loses a row: one test per finding of the ingest-trust issue, on real DuckDB files,
the real GX suite and (for retries) real Prefect runs. Each fails on the code before the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import date
from pathlib import Path

import duckdb
import pytest

import tasks.ingest.commit as commit_mod
import tasks.ingest.stage as stage_mod
from tasks.common.config import Home
from tasks.common.locks import RunLockedError, warehouse_lock
from tasks.common.profiles import load_profile, parse_profile
from tasks.ingest.errors import IngestError, ValidationRefusedError
from tasks.ingest.run import ingest
from tasks.ingest.scratch import cleanup_dead_scratch

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, data: bytes | list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else ("\n".join(data) + "\n").encode())
    return path


def q(home: Home, query: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(home.db), read_only=True)
    try:
        return con.execute(query, params or {}).fetchall()
    finally:
        con.close()


def day_lines(day: str, n: int, session0: int = 1, item0: int = 1000) -> list[str]:
    """``n`` distinct yoochoose clicks on ``day`` (no duplicates)."""
    return [f"{session0 + i // 3},{day}T10:{(i // 60) % 60:02d}:{i % 60:02d}.000Z,{item0 + i},0" for i in range(n)]


def lake_rows(home: Home) -> list[tuple]:
    files = sorted(home.clicks_lake.glob("event_date=*/*.parquet"))
    if not files:
        return []
    return duckdb.execute(
        "SELECT event_date::VARCHAR, session_id, item_id, source_row, run_id FROM read_parquet($f, hive_partitioning = true) "
        "ORDER BY ALL", {"f": [str(f) for f in files]}).fetchall()


def raw_rows(home: Home) -> list[tuple]:
    return q(home, "SELECT event_date::VARCHAR, session_id, item_id, source_row, run_id FROM raw.clicks ORDER BY ALL")


def assert_lake_matches_raw(home: Home) -> None:
    assert lake_rows(home) == raw_rows(home)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home")


@pytest.fixture
def yoo():
    return load_profile("yoochoose")


QUOTED = parse_profile({
    "name": "quoted", "format": "csv", "header": True, "delimiter": ",",
    "fields": {"session_id": "s", "item_id": "i", "ts": "t", "category": "c"},
    "timestamp": {"kind": "iso8601"},
})


# 1. A stray quote quarantines its own line only; every later line is read and counted.
def test_stray_quote_quarantines_one_line_and_keeps_the_rest(home, tmp_path):
    good = [f"{n},{1000 + n},2014-04-07T10:00:{n:02d}Z,\"cat, {n}\"" for n in range(1, 57)]
    lines = ["s,i,t,c"] + good[:18] + ['"unterminated,0,'] + good[18:]  # the stray quote is line 20
    f = write(tmp_path / "quoted.csv", lines)
    rep = ingest(home, QUOTED, [f]).files[0]
    assert rep.rows_read == 57  # data lines physically in the file (header excluded)
    assert (rep.rows_accepted, rep.rows_quarantined) == (56, 1)
    [(row, reason)] = q(home, "SELECT source_row, reason FROM quarantine.clicks")
    assert row == 20 and "unbalanced quote" in reason
    # The rows after the bad line carry their exact line numbers, and quoted fields are unquoted.
    assert q(home, "SELECT max(source_row), count(*) FROM raw.clicks") == [(58, 56)]
    assert q(home, "SELECT category FROM raw.clicks WHERE source_row = 58") == [("cat, 56",)]


def test_quoted_fields_wrong_counts_and_doubled_quotes(home, tmp_path):
    f = write(tmp_path / "q.csv", [
        "s,i,t,c",
        '1,"it,em",2014-04-07T10:00:00Z,"say ""hi"""',    # line 2: good, quoted delimiter and quotes
        "2,x,2014-04-07T10:00:01Z",                       # line 3: too few fields
        "3,y,2014-04-07T10:00:02Z,c,extra",               # line 4: too many
        '4,z"z,2014-04-07T10:00:03Z,c',                   # line 5: quote inside an unquoted field
        "5,w,2014-04-07T10:00:04Z,c",                     # line 6: good
    ])
    rep = ingest(home, QUOTED, [f]).files[0]
    assert (rep.rows_read, rep.rows_accepted, rep.rows_quarantined) == (5, 2, 3)
    assert q(home, "SELECT item_id, category FROM raw.clicks ORDER BY source_row") == [
        ("it,em", 'say "hi"'), ("w", "c")]
    reasons = dict(q(home, "SELECT source_row, reason FROM quarantine.clicks"))
    assert "expected 4 fields, found 3" in reasons[3] and "found 5" in reasons[4] and "quote" in reasons[5]


# 2. A retried commit (the lake rename failed once) publishes every day, and records the file once.
def test_retry_after_a_failed_lake_rename_loses_no_day(home, tmp_path, prefect_harness, monkeypatch):
    from flows.ingest import ingest_flow

    f = write(tmp_path / "land" / "clicks.dat", day_lines("2014-04-11", 200) + day_lines("2014-04-12", 200, 500))
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("injected: rename failed once")
        return real_replace(src, dst)

    monkeypatch.setattr(commit_mod.os, "replace", flaky_replace)
    result = ingest_flow(source="yoochoose", path=str(f), home=str(home.root))
    assert calls["n"] >= 3  # failed once, then both partitions were renamed on the retry
    assert result["days_written"] == ["2014-04-11", "2014-04-12"]
    assert q(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1 ORDER BY 1") == [
        ("2014-04-11", 200), ("2014-04-12", 200)]
    assert_lake_matches_raw(home)
    assert q(home, "SELECT count(*) FROM ops.ingest_files") == [(1,)]
    assert q(home, "SELECT state FROM ops.ingest_runs") == [("published",)]


def test_retry_of_a_transiently_failing_stage_is_idempotent(home, tmp_path, prefect_harness, monkeypatch):
    from flows.ingest import ingest_flow

    f = write(tmp_path / "land" / "clicks.dat", day_lines("2014-04-11", 50))
    real = stage_mod.line_tables
    calls = {"n": 0}

    def flaky_reader(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("injected: transient read error")
        return real(*args)

    monkeypatch.setattr(stage_mod, "line_tables", flaky_reader)
    ingest_flow(source="yoochoose", path=str(f), home=str(home.root))
    assert calls["n"] == 2  # one failure, then the retry's read
    assert q(home, "SELECT count(*), count(DISTINCT source_row) FROM raw.clicks") == [(50, 50)]
    assert q(home, "SELECT count(*) FROM ops.ingest_files") == [(1,)]
    assert_lake_matches_raw(home)
    assert not list(home.tmp.glob("stage-*"))


# 3. The same file name from another folder is another file: it never removes the first one's rows.
def test_same_name_in_another_folder_removes_nothing(home, yoo, tmp_path):
    a = write(tmp_path / "dirA" / "clicks.dat", day_lines("2014-04-09", 100))
    c = write(tmp_path / "dirC" / "clicks.dat", day_lines("2014-04-10", 100))
    ingest(home, yoo, [a])
    ingest(home, yoo, [c])
    assert q(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1 ORDER BY 1") == [
        ("2014-04-09", 100), ("2014-04-10", 100)]
    assert_lake_matches_raw(home)
    # ...while the same file again replaces its own rows (and only those).
    write(a, day_lines("2014-04-09", 60))
    ingest(home, yoo, [a])
    assert q(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1 ORDER BY 1") == [
        ("2014-04-09", 60), ("2014-04-10", 100)]
    assert_lake_matches_raw(home)
    assert q(home, "SELECT count(DISTINCT file_id), count(DISTINCT path) FROM ops.ingest_files") == [(2, 2)]


# 4. Symlinks: resolved and recorded; two links to two files keep both; outside links need a flag.
def test_symlinks_are_resolved_recorded_and_guarded(home, yoo, tmp_path):
    a = write(tmp_path / "dirA" / "clicks.dat", day_lines("2014-04-09", 150))
    b = write(tmp_path / "dirB" / "clicks.dat", day_lines("2014-04-09", 150, 900, 5000))
    land = tmp_path / "land"
    land.mkdir()
    (land / "x.dat").symlink_to(a)
    (land / "y.dat").symlink_to(b)
    from tasks.ingest.landing import list_input_files

    with pytest.raises(IngestError, match="outside its landing folder") as err:
        ingest(home, yoo, list_input_files(land))
    assert "\n" not in str(err.value)
    ingest(home, yoo, list_input_files(land), allow_outside_links=True)
    assert q(home, "SELECT count(*) FROM raw.clicks") == [(300,)]
    assert len(lake_rows(home)) == 300
    assert_lake_matches_raw(home)
    assert q(home, "SELECT path, link_path FROM ops.ingest_files ORDER BY path") == [
        (str(a.resolve()), str(land / "x.dat")), (str(b.resolve()), str(land / "y.dat"))]
    # Two names for one file in one run: refused (it would be counted twice).
    (land / "z.dat").symlink_to(land / "x.dat")
    with pytest.raises(IngestError, match="the same file as"):
        ingest(home, yoo, [land / "x.dat", land / "z.dat"], allow_outside_links=True)


def _ingest_script(home: Path, files: list[Path], day: str | None) -> str:
    return textwrap.dedent(f"""
        import sys
        from datetime import date
        from pathlib import Path
        from tasks.common.config import Home
        from tasks.ingest.run import ingest
        from tasks.common.profiles import load_profile
        day = date.fromisoformat({day!r}) if {day!r} else None
        rep = ingest(Home.resolve({str(home)!r}), load_profile("yoochoose"), [Path(p) for p in {[str(f) for f in files]!r}], day=day)
        print("done", rep.totals["rows_accepted"], flush=True)
    """)


def _child_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


# 5. Two ingests of the same day at once: serialised on the warehouse, so the lake and raw.clicks agree.
def test_overlapping_ingests_of_one_day_end_consistent(home, tmp_path):
    a = write(tmp_path / "dirA" / "a.dat", day_lines("2014-04-09", 80))
    b = write(tmp_path / "dirB" / "b.dat", day_lines("2014-04-09", 90, 700, 8000))
    home.ensure()
    children = []
    with warehouse_lock(home, what="test holding the warehouse"):
        for f in (a, b):
            children.append(subprocess.Popen([sys.executable, "-c", _ingest_script(home.root, [f], "2014-04-09")],
                                             cwd=REPO, env=_child_env(), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True))
        for child in children:  # both staged and now wait for the warehouse: they will overlap
            line = child.stderr.readline()
            assert "waiting for the warehouse" in line and "test holding the warehouse" in line, line
    outs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outs
    # --date replaces the day whole: exactly one of the two files holds it, in both places.
    n = q(home, "SELECT count(*) FROM raw.clicks")[0][0]
    assert n in (80, 90)
    assert_lake_matches_raw(home)


# 6. Anything that must wait for the warehouse waits (validation's history ATTACH included).
def test_ingest_waits_for_a_process_holding_the_database(home, yoo, tmp_path, monkeypatch):
    write(tmp_path / "first.dat", day_lines("2014-04-08", 30))
    ingest(home, yoo, [tmp_path / "first.dat"])  # the warehouse exists, so validation attaches history
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read(); c.close()", str(home.db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    f = write(tmp_path / "second.dat", day_lines("2014-04-09", 30))
    monkeypatch.setenv("CLICKREC_LOCK_WAIT_SECONDS", "1")
    with pytest.raises(RunLockedError, match=r"held by another process \(PID \d+\)"):
        ingest(home, yoo, [f])
    # With time to wait: the holder lets go while ingest waits (released on ingest's first retry).
    import tasks.common.warehouse as wh

    monkeypatch.setenv("CLICKREC_LOCK_WAIT_SECONDS", "120")
    real_sleep = wh.time.sleep
    waited = threading.Event()

    def release_then_sleep(seconds):
        if not waited.is_set():
            waited.set()
            holder.stdin.close()
            holder.wait(timeout=60)
        real_sleep(seconds)

    monkeypatch.setattr(wh.time, "sleep", release_then_sleep)
    rep = ingest(home, yoo, [f])
    assert waited.is_set() and rep.totals["rows_accepted"] == 30


# 7. SIGKILL between commit and lake publish: the next run of any kind repairs the lake.
@pytest.mark.parametrize("point", ["ingest-after-commit", "ingest-mid-publish"])
def test_sigkill_after_commit_is_repaired_by_the_next_run(home, tmp_path, point):
    a = write(tmp_path / "land" / "a.dat", day_lines("2014-04-09", 40) + day_lines("2014-04-10", 40, 300))
    home.ensure()
    child = subprocess.run([sys.executable, "-c", _ingest_script(home.root, [a], None)], cwd=REPO,
                           env=_child_env(CLICKREC_CRASH_AT=point), capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL
    assert q(home, "SELECT count(*) FROM raw.clicks") == [(80,)]
    assert q(home, "SELECT state FROM ops.ingest_runs") == [("committed",)]
    assert len(lake_rows(home)) < 80  # the lake lags behind raw.clicks
    assert list(home.tmp.glob("stage-*"))  # the killed run's scratch files are still there
    # Another file, another day: its commit first finishes the killed run.
    b = write(tmp_path / "land" / "b.dat", day_lines("2014-04-11", 10, 900))
    ingest(home, load_profile("yoochoose"), [b])
    assert q(home, "SELECT count(*) FROM raw.clicks") == [(90,)]
    assert_lake_matches_raw(home)
    assert q(home, "SELECT DISTINCT state FROM ops.ingest_runs") == [("published",)]
    assert not list(home.tmp.glob("stage-*"))


def test_repair_rebuilds_a_lost_staged_file_from_raw(home, yoo, tmp_path):
    a = write(tmp_path / "a.dat", day_lines("2014-04-09", 25))
    home.ensure()
    child = subprocess.run([sys.executable, "-c", _ingest_script(home.root, [a], None)], cwd=REPO,
                           env=_child_env(CLICKREC_CRASH_AT="ingest-after-commit"), capture_output=True, timeout=300)
    assert child.returncode == -signal.SIGKILL
    cleanup_dead_scratch(home)  # the staged Parquet is gone: only raw.clicks holds the rows
    from tasks.ingest.commit import publish_committed

    assert len(publish_committed(home)) == 1
    assert len(lake_rows(home)) == 25
    assert_lake_matches_raw(home)


# 8. Blank and CRLF lines: counted, and line numbers stay exact after them.
def test_blank_and_crlf_lines_are_counted_and_numbered_exactly(home, yoo, tmp_path):
    data = (b"1,2014-04-07T10:00:00Z,11,0\r\n"   # line 1, CRLF
            b"\n"                                # line 2, blank
            b"2,2014-04-07T10:00:01Z,12,0\r\n"   # line 3, CRLF
            b"\r\n"                              # line 4, blank (CRLF)
            b"3,2014-04-07T10:00:02Z,,0\n"       # line 5, missing item: quarantined
            b"4,2014-04-07T10:00:03Z,14,0")      # line 6, no final newline
    f = write(tmp_path / "crlf.dat", data)
    rep = ingest(home, yoo, [f]).files[0]
    assert (rep.rows_read, rep.rows_accepted, rep.rows_blank, rep.rows_quarantined) == (6, 3, 2, 1)
    assert q(home, "SELECT source_row, item_id FROM raw.clicks ORDER BY 1") == [(1, "11"), (3, "12"), (6, "14")]
    assert q(home, "SELECT source_row FROM quarantine.clicks") == [(5,)]
    assert q(home, "SELECT rows_read, rows_blank FROM ops.ingest_files") == [(6, 2)]


# 9. Fixing a quarantined line and re-ingesting moves the row out of quarantine.
def test_reingest_replaces_the_files_quarantine(home, yoo, tmp_path):
    f = write(tmp_path / "c.dat", ["1,2014-04-07T10:00:00Z,11,0", "2,not-a-time,12,0", "3,2014-04-07T10:00:02Z,13,0"])
    ingest(home, yoo, [f])
    assert q(home, "SELECT source_row FROM quarantine.clicks") == [(2,)]
    write(f, ["1,2014-04-07T10:00:00Z,11,0", "2,2014-04-07T10:00:01Z,12,0", "3,2014-04-07T10:00:02Z,13,0"])
    ingest(home, yoo, [f])
    assert q(home, "SELECT count(*) FROM quarantine.clicks") == [(0,)]
    assert q(home, "SELECT count(*) FROM raw.clicks") == [(3,)]
    # Another file's quarantine is not touched by this file's re-ingest.
    g = write(tmp_path / "g.dat", ["9,2014-04-07T10:00:00Z,,0", "9,2014-04-07T10:00:09Z,19,0"])
    ingest(home, yoo, [g])
    ingest(home, yoo, [f])
    assert q(home, "SELECT source_file, source_row FROM quarantine.clicks") == [("g.dat", 1)]


# 11. Guard rails: a file that is mostly "duplicates" is flagged, and refused with strict.
def test_duplicate_share_guard_flags_and_strict_refuses(home, yoo, tmp_path):
    lines = day_lines("2014-04-07", 80)
    f = write(tmp_path / "dups.dat", lines + lines[:18])  # 18 of 98 rows repeat an earlier row
    rep = ingest(home, yoo, [f])
    [flag] = rep.flags
    assert "duplicate share 18.4%" in flag and "5.0%" in flag
    assert q(home, "SELECT flags FROM ops.ingest_files") == [(flag,)]
    with pytest.raises(ValidationRefusedError, match="refused under --strict: .*duplicate share") as err:
        ingest(home, yoo, [f], strict=True)
    assert err.value.exit_code == 3


def test_day_scoped_replace_keeps_other_days_and_lake_agrees(home, yoo, tmp_path):
    a = write(tmp_path / "a.dat", day_lines("2014-04-07", 20) + day_lines("2014-04-08", 20, 100))
    ingest(home, yoo, [a])
    b = write(tmp_path / "b.dat", day_lines("2014-04-08", 5, 300, 7000))
    ingest(home, yoo, [b], day=date(2014, 4, 8))
    assert q(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1 ORDER BY 1") == [
        ("2014-04-07", 20), ("2014-04-08", 5)]
    assert_lake_matches_raw(home)
    assert q(home, "SELECT count(*) FROM ops.lake_files WHERE state <> 'live'") == [(0,)]


def test_cli_strict_refuses_with_exit_3_and_outside_links_need_the_flag(tmp_path):
    """Through the CLI, as a scheduler runs it: --strict maps a guard rail to exit code 3, and a
    landing folder's symlink that leads elsewhere is refused unless --allow-outside-links."""
    lines = day_lines("2014-04-07", 80)
    dups = write(tmp_path / "dups" / "dups.dat", lines + lines[:18])
    home = tmp_path / "home"
    env = _child_env(PREFECT_HOME=str(tmp_path / "prefect"), CLICKREC_HOME=str(home))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)

    refused = cli("ingest", "--source", "yoochoose", "--path", str(dups), "--strict")
    assert refused.returncode == 3, refused.stderr
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "refused under --strict: duplicate share 18.4%" in error and "Traceback" not in refused.stderr
    land = tmp_path / "land"
    land.mkdir()
    (land / "x.dat").symlink_to(dups)
    outside = cli("ingest", "--source", "yoochoose", "--path", str(land))
    assert outside.returncode == 1 and "outside its landing folder" in outside.stderr
    flagged = cli("ingest", "--source", "yoochoose", "--path", str(land), "--allow-outside-links")
    assert flagged.returncode == 0, flagged.stderr
    assert "guard rail" in flagged.stdout and "duplicate share 18.4%" in flagged.stdout
