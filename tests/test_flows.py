"""Real Prefect flows (temporary offline API via prefect_test_harness) on real DuckDB files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tasks.tools.synth import write_yoochoose_days

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    write_yoochoose_days(out, days=3, clicks_per_day=2000, seed=1, with_user=True)
    return out


def _counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1").fetchall())
    finally:
        con.close()


def test_ingest_flow_one_day_then_backfill_threads(prefect_harness, landing, tmp_path):
    from flows.ingest import backfill_ingest_flow, ingest_flow

    home = tmp_path / "home"
    one = ingest_flow(source="synthetic", path=str(landing), day="2014-04-02", home=str(home))
    assert one["days_written"] == ["2014-04-02"]
    assert set(_counts(home / "clickrec.duckdb")) == {"2014-04-02"}
    results = backfill_ingest_flow(source="synthetic", path=str(landing), start="2014-04-01", end="2014-04-03",
                                   home=str(home))
    assert [r["day"] for r in results] == ["2014-04-01", "2014-04-02", "2014-04-03"]
    counts = _counts(home / "clickrec.duckdb")
    assert counts == {r["day"]: r["totals"]["rows_accepted"] for r in results}
    assert sum(counts.values()) == 6000 - sum(r["totals"]["rows_quarantined"] + r["totals"]["rows_duplicate"]
                                              for r in results)


def test_backfill_on_a_local_two_worker_dask_cluster(prefect_harness, landing, tmp_path):
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    from flows.ingest import backfill_ingest_flow

    home = tmp_path / "home"
    # Threads-backed workers: a real 2-worker Dask cluster and scheduler, without every worker
    # process booting its own temporary Prefect server (STACK-NOTES: ~35 s each).
    with LocalCluster(n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None) as cluster:
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        results = backfill_ingest_flow.with_options(task_runner=runner)(
            source="synthetic", path=str(landing), start="2014-04-01", end="2014-04-03", home=str(home)
        )
    assert sorted(r["day"] for r in results) == ["2014-04-01", "2014-04-02", "2014-04-03"]
    assert set(_counts(home / "clickrec.duckdb")) == {"2014-04-01", "2014-04-02", "2014-04-03"}


def test_cli_errors_are_one_line_and_nonzero(tmp_path):
    env = dict(os.environ, CLICKREC_HOME=str(tmp_path / "home"))
    cli = [sys.executable, "-m", "flows.cli"]
    cases = [
        (["ingest", "--source", "yoochoose", "--path", str(tmp_path / "missing")], "no such file"),
        (["ingest", "--source", "nope", "--path", str(tmp_path)], "unknown source profile"),
        (["backfill", "--source", "yoochoose", "--path", str(tmp_path), "--start", "../etc", "--end", "2014-01-01"],
         "expected a date"),
    ]
    for args, needle in cases:
        proc = subprocess.run(cli + args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert proc.returncode != 0
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error:") and needle in lines[0]
        assert "Traceback" not in proc.stdout + proc.stderr
