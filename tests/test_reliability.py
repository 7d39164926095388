"""Crash safety and overlapping runs, with real processes: SIGKILL at named points, real file locks.

Each scenario runs the real CLI in a subprocess (its own temporary Prefect API), on a small synthetic
log, with deterministic models (baselines) so that "identical published tables" is a fair demand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from tasks.common.config import Home
from tasks.common.faults import POINTS
from tasks.common.locks import night_lock, warehouse_run_lock
from tasks.tools.synth import write_yoochoose_days

REPO = Path(__file__).resolve().parent.parent
NIGHT = "2014-04-04"
ONLY = "pop,spop,pop-user,ease"
TABLES = ("user_topn", "session_next", "item_similar")  # the kinds of recs.recommendations


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, PREFECT_HOME=str(tmp / "prefect"), CLICKREC_LOCK_WAIT_SECONDS="300",
                PREFECT_LOGGING_LEVEL="CRITICAL")


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run the CLI in its own session, output to files: a SIGKILLed run leaves its temporary Prefect
    server orphaned with our pipes open, so we wait for the process itself, then end its group."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdout=out, stderr=err, text=True,
                                env=env, cwd=REPO, start_new_session=True)
        try:
            rc = proc.wait(timeout=900)
        finally:
            _end_group(proc.pid)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, rc, out.read(), err.read())


def _end_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _night_args(home: Path, landing: Path, day: str = NIGHT) -> list[str]:
    return ["nightly", "--source", "synthetic", "--path", str(landing), "--date", day, "--home", str(home),
            "--only", ONLY]


def _published(home: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(home / "published.duckdb"), read_only=True)
    try:
        return {t: con.execute("SELECT * FROM recs.recommendations WHERE kind = $kind ORDER BY ALL",
                               {"kind": t}).fetchall() for t in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A home with three backfilled days (no training yet) and the landing folder with a fourth."""
    root = tmp_path_factory.mktemp("reliability")
    landing = root / "landing"
    write_yoochoose_days(landing, days=4, clicks_per_day=3000, seed=3, with_user=True)
    env = _env(root)
    home = root / "template"
    proc = _cli(["backfill", "--source", "synthetic", "--path", str(landing), "--start", "2014-04-01",
                 "--end", "2014-04-03", "--retrain", "none", "--home", str(home)], env)
    assert proc.returncode == 0, proc.stderr
    return home, landing, env


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> dict[str, list[tuple]]:
    home, landing, env = template
    ref = tmp_path_factory.mktemp("ref") / "home"
    shutil.copytree(home, ref)
    proc = _cli(_night_args(ref, landing), env)
    assert proc.returncode == 0, proc.stderr
    tables = _published(ref)
    assert tables["session_next"] and tables["user_topn"]  # a meaningful comparison
    return tables


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_rerun_publishes_identical_tables(point, template, reference, tmp_path):
    home, landing, env = template
    work = tmp_path / "home"
    shutil.copytree(home, work)
    crashed = _cli(_night_args(work, landing), env | {"CLICKREC_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    # Nothing half-written is visible: either no published file yet, or a complete, openable one.
    if (work / "published.duckdb").exists():
        _published(work)
    assert not list((work / "lake" / "clicks").rglob("*.tmp*"))
    rerun = _cli(_night_args(work, landing), env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _published(work) == reference


def test_same_night_twice_refuses_the_second_run(template, tmp_path):
    home, landing, env = template
    work = tmp_path / "home"
    shutil.copytree(home, work)
    with night_lock(Home.resolve(work), __import__("datetime").date.fromisoformat(NIGHT)):
        second = _cli(_night_args(work, landing), env)
    assert second.returncode == 4  # README, exit codes: held by another run
    assert "already running" in second.stderr and "Traceback" not in second.stderr
    assert not (work / "published.duckdb").exists()  # the refused run changed nothing


def test_another_night_waits_for_the_warehouse(template, tmp_path):
    home, landing, env = template
    work = tmp_path / "home"
    shutil.copytree(home, work)
    with warehouse_run_lock(Home.resolve(work)):
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *_night_args(work, landing)], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        # Handshake, not a sleep: the run announces that it waits for the warehouse.
        line = proc.stderr.readline()
        while line and "waiting for the warehouse" not in line:
            line = proc.stderr.readline()
        assert "waiting for the warehouse" in line
        assert proc.poll() is None and not (work / "published.duckdb").exists()
    try:
        rc = proc.wait(timeout=900)
        err = proc.stderr.read()
    finally:
        _end_group(proc.pid)
    assert rc == 0, err[-2000:]
    assert _published(work)["session_next"]


def _runs(home: Path, model: str) -> list[tuple]:
    con = duckdb.connect(str(Home.resolve(home).db), read_only=True)
    try:
        return con.execute("SELECT run_date::VARCHAR, version, status, warm_start_from, checkpoint_path "
                           "FROM models.model_runs WHERE model = ? ORDER BY run_date", [model]).fetchall()
    finally:
        con.close()


def test_warm_start_chains_nights_and_falls_back_on_a_tampered_checkpoint(tmp_path):
    landing = tmp_path / "landing"
    write_yoochoose_days(landing, days=6, clicks_per_day=3000, seed=5, with_user=True)
    env, home = _env(tmp_path), tmp_path / "home"
    config = tmp_path / "night.toml"
    config.write_text("[night.models.gru4rec]\nepochs = 3\n")
    proc = _cli(["backfill", "--source", "synthetic", "--path", str(landing), "--start", "2014-04-01",
                 "--end", "2014-04-03", "--retrain", "none", "--home", str(home)], env)
    assert proc.returncode == 0, proc.stderr[-2000:]

    def night(day: str, *extra: str) -> dict:
        out = tmp_path / f"night-{day}.json"
        args = ["nightly", "--source", "synthetic", "--path", str(landing), "--date", day, "--home", str(home),
                "--only", "gru4rec", "--config", str(config), "--json", str(out), *extra]
        done = _cli(args, env)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(out.read_text())

    night("2014-04-04")
    second_night = night("2014-04-05", "--warm-start")
    first, second = _runs(home, "gru4rec")
    assert first[3] is None and first[2] == "published"
    assert second[3] == first[1]  # started from the night before's published version
    assert second[1] != first[1]
    # the gate judged tonight's model against yesterday's champion re-scored on tonight's test day
    assert "on 2014-04-05" in second_night["decisions"][0]["reason"]

    champion = max((r for r in _runs(home, "gru4rec") if r[2] == "published"), key=lambda r: r[0])
    weights = Path(champion[4]) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: not a loadable checkpoint
    third = night("2014-04-06", "--warm-start")
    last = _runs(home, "gru4rec")[-1]
    assert last[0] == "2014-04-06" and last[3] is None  # trained from scratch
    notes = " ".join(third["notes"])
    assert "warm start refused" in notes and "not re-scored" in notes and "weights.pt" in notes
    assert "on 2014-04-06" not in third["decisions"][0]["reason"]  # the stored figure was used instead
    assert _published(home)["session_next"]
