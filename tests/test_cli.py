"""Every CLI command through a subprocess, on one real small home built once for the module.

The home: ``generate`` 4 days of 1,500 clicks, ``ingest`` one day, ``backfill`` three days without
training, then ``nightly`` for the fourth day with the baselines and a 2-epoch Mult-DAE (so every
published table has rows). Prefect is not pointed anywhere: the CLI must keep its state under the
home folder and start (and end) its own temporary server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
NIGHT = "2014-04-04"
ONLY = "pop,spop,pop-user,ease,multdae"
NIGHT_TOML = "[night.models.multdae]\nepochs = 2\nhidden = [32]\nlatent = 8\n"
ANALYST = sorted((REPO / "sql" / "analyst").glob("*.sql"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") or k in (
        "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")}
    return env | {"OMP_NUM_THREADS": "1", "DO_NOT_TRACK": "1", "COLUMNS": "200"}


def cli(*args: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real console script's code path (``flows.cli:main``) in its own process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdout=out, stderr=err, text=True,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                env=_env(), cwd=REPO, start_new_session=True)
        try:
            proc.communicate(stdin, timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


def ok(*args: str, **kw) -> subprocess.CompletedProcess:
    done = cli(*args, **kw)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


def servers(prefect_home: Path) -> list[int]:
    """Processes (of any kind) whose environment carries this PREFECT_HOME: a temporary Prefect server."""
    needle = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env.split(b"\0") and state != "Z":
            found.append(int(entry))
    return found


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)  # polling a condition with a deadline, not a synchronisation sleep
    return condition()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cli")
    landing, home = root / "landing", root / "home"
    config = root / "night.toml"
    config.write_text(NIGHT_TOML)
    steps = {"generate": ok("generate", "--out", str(landing), "--days", "4", "--clicks-per-day", "1500",
                            "--items", "200", "--seed", "1")}
    steps["ingest"] = ok("ingest", "--source", "synthetic", "--path", str(landing), "--date", "2014-04-01",
                         "--home", str(home), "--json", str(root / "ingest.json"))
    steps["backfill"] = ok("backfill", "--source", "synthetic", "--path", str(landing), "--start", "2014-04-01",
                           "--end", "2014-04-03", "--retrain", "none", "--home", str(home),
                           "--json", str(root / "backfill.json"))
    steps["nightly"] = ok("--verbose", "nightly", "--source", "synthetic", "--path", str(landing), "--date", NIGHT,
                          "--home", str(home), "--only", ONLY, "--config", str(config),
                          "--json", str(root / "nightly.json"))
    return {"root": root, "landing": landing, "home": home, "config": config, "steps": steps}


# ------------------------------------------------------------------------ the pipeline's own commands


def test_generate_writes_the_days_it_says(built):
    files = sorted(built["landing"].iterdir())
    assert len(files) == 4
    assert "wrote 4 daily files (6,000 clicks)" in built["steps"]["generate"].stdout


def test_progress_lines_by_default_none_with_quiet(built, tmp_path):
    """A run is not silent: by default each staged file (and each stage and epoch of a night) is a
    plain timestamped line on stderr (not a terminal here); --quiet leaves only results and errors."""
    day = sorted(built["landing"].iterdir())[0]
    default = ok("ingest", "--source", "synthetic", "--path", str(day), "--home", str(tmp_path / "a"))
    lines = [ln for ln in default.stderr.splitlines() if " ingest " in ln and ": read " in ln]
    assert len(lines) == 1 and day.name in lines[0], default.stderr
    assert re.match(r"\d\d:\d\d:\d\d ingest ", lines[0]) and "accepted" in lines[0]
    quiet = ok("--quiet", "ingest", "--source", "synthetic", "--path", str(day), "--home", str(tmp_path / "b"))
    assert ": read " not in quiet.stderr, quiet.stderr


def test_ingest_then_backfill_replace_days_and_account_every_row(built):
    ingest = json.loads((built["root"] / "ingest.json").read_text())
    assert ingest["days_written"] == ["2014-04-01"]
    assert ingest["totals"]["rows_read"] == 1500
    back = json.loads((built["root"] / "backfill.json").read_text())
    assert [r["day"] for r in back["ingested"]] == ["2014-04-01", "2014-04-02", "2014-04-03"]
    assert back["nights"] == []  # --retrain none
    st = json.loads(ok("status", "--home", str(built["home"]), "--json").stdout)
    rows = {p["event_date"]: p["rows"] for p in st["partitions"]}
    # 2014-04-01 was ingested twice: the backfill replaced it, it did not add to it
    assert rows == {"2014-04-01": 1500, "2014-04-02": 1500, "2014-04-03": 1500, NIGHT: 1500}


def test_nightly_trains_only_the_named_models_and_publishes(built):
    night = json.loads((built["root"] / "nightly.json").read_text())
    assert sorted(m["model"] for m in night["models"]) == sorted(ONLY.split(","))
    assert night["run_date"] == NIGHT and Path(night["report"]).is_file()
    err = built["steps"]["nightly"].stderr
    assert "started" in err  # a line on stderr as it starts
    # --verbose: Prefect's run logger on stderr, stage lines included ...
    assert "Beginning flow run" in err and "features 2014-" in err and "bundle for 2014-04-04" in err
    # ... and Prefect used the CLI's own server (PDEATHSIG), not a temporary one of its own
    assert "Starting temporary server" not in err and "Error logging to API" not in err


def test_prefect_state_lives_under_the_home_and_no_server_outlives_a_command(built):
    prefect_home = built["home"] / "prefect"
    assert (prefect_home / "prefect.db").is_file()
    assert not servers(prefect_home)


# --------------------------------------------------------------------------------------------- status


def test_status_text_and_json(built):
    text = ok("status", "--home", str(built["home"])).stdout
    assert "raw.clicks by day" in text and NIGHT in text and "last ingest runs" in text
    st = json.loads(ok("status", "--home", str(built["home"]), "--json").stdout)
    assert st["lake_partitions"] == ["2014-04-01", "2014-04-02", "2014-04-03", NIGHT]
    assert st["runs"] and all(r["finished_at"] for r in st["runs"])
    assert sum(r["read"] for r in st["runs"]) == 1500 * 5  # 04-01 twice
    [night] = st["nights"]
    assert night["run_date"] == NIGHT and night["models"] == len(ONLY.split(",")) and night["published"] >= 1
    disk = {d["path"]: d for d in st["disk"]}
    assert disk["prefect/"]["mb"] > 0 and disk["clickrec.duckdb"]["files"] == 1  # Prefect's state is in the home
    assert "last nights" in text and "disk use" in text


def test_status_without_a_warehouse(tmp_path):
    done = ok("status", "--home", str(tmp_path / "empty"))
    assert "no warehouse yet" in done.stdout


# ---------------------------------------------------------------------------------------------- query


def test_query_text_json_file_and_stdin_agree(built, tmp_path):
    home = ["--home", str(built["home"])]
    sql = "SELECT count(*) AS n FROM recs.recommendations"
    [as_json] = json.loads(ok("query", sql, "--json", *home).stdout)
    assert as_json["n"] > 0
    f = tmp_path / "q.sql"
    f.write_text(f"-- a leading comment, as in sql/analyst/\n{sql};\n")
    assert json.loads(ok("query", "--file", str(f), "--json", *home).stdout) == [as_json]
    assert json.loads(ok("query", "-", "--json", *home, stdin=f.read_text()).stdout) == [as_json]
    assert json.loads(ok("query", "--file", "-", "--json", *home, stdin=sql).stdout) == [as_json]
    text = ok("query", sql, *home).stdout
    assert f"{as_json['n']:,}" in text and "(1 row)" in text


def test_query_readme_form_with_a_leading_comment(built):
    text = (REPO / "sql" / "analyst" / "model_leaderboard.sql").read_text()
    assert text.startswith("--")
    rows = json.loads(ok("query", text, "--json", "--home", str(built["home"])).stdout)  # "$(cat X.sql)"
    assert rows and {"model", "hr", "status"} <= set(rows[0])


def test_query_json_is_valid_json_with_nan_and_inf_as_null(built):
    out = ok("query", "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, 1.5 AS c, NULL AS d, DATE '2014-04-04' AS e",
             "--json", "--home", str(built["home"])).stdout
    assert "NaN" not in out and "Infinity" not in out
    [row] = json.loads(out)
    assert row == {"a": None, "b": None, "c": "1.5", "d": None, "e": "2014-04-04"}  # DECIMAL exact, as text


def test_query_text_prints_values_literally(built):
    sql = ("SELECT '[/x]' AS closing, 'item[bold]42[/bold]' AS markup, NULL AS nothing, "
           "'a' || chr(27) || '[31mred' || chr(27) || ']0;title' || chr(7) || 'z' || chr(8) AS escapes, 7 AS number")
    done = ok("query", sql, "--home", str(built["home"]))
    out = done.stdout
    assert "[/x]" in out and "item[bold]42[/bold]" in out
    assert "NULL" in out
    assert "\x1b" not in out and "\x07" not in out and "\x08" not in out
    assert "ared" in out
    header, = [ln for ln in out.splitlines() if "closing" in ln]
    row, = [ln for ln in out.splitlines() if "[/x]" in ln]
    # the numeric column is right-aligned: its value ends where its header does
    assert row.rindex("7") == header.index("number") + len("number") - 1


@pytest.mark.parametrize("path", ANALYST, ids=[p.stem for p in ANALYST])
def test_every_analyst_query_returns_rows_on_the_demo_data(built, path):
    rows = json.loads(ok("query", "--file", str(path), "--json", "--home", str(built["home"])).stdout)
    assert rows, f"{path.name} returned no rows"


def test_analyst_parameters_are_duckdb_variables(built):
    home = ["--home", str(built["home"])]
    path = str(REPO / "sql" / "analyst" / "user_recommendations.sql")
    default = json.loads(ok("query", "--file", path, "--json", *home).stdout)
    user = json.loads(ok("query", "SELECT max(entity_id) AS u FROM recs.latest WHERE kind = 'user_topn'", "--json", *home).stdout)[0]["u"]
    chosen = json.loads(ok("query", "--file", path, "--var", f"user_id={user}", "--json", *home).stdout)
    assert chosen and default and chosen != default
    none = json.loads(ok("query", "--file", path, "--var", "user_id=nobody", "--json", *home).stdout)
    assert none == []


def test_query_errors(built, tmp_path):
    home = ["--home", str(built["home"])]
    bad = cli("query", "SELECT * FROM no_such_table", *home)
    assert bad.returncode == 1 and bad.stderr.startswith("error: query failed") and len(bad.stderr.splitlines()) == 1
    write = cli("query", "CREATE TABLE t AS SELECT 1", *home)
    assert write.returncode == 1 and "read-only" in write.stderr
    both = cli("query", "SELECT 1", "--file", str(tmp_path / "q.sql"), *home)
    assert both.returncode == 2 and "--file" in both.stderr
    missing = cli("query", "--file", str(tmp_path / "nope.sql"), *home)
    assert missing.returncode == 2 and "--file" in missing.stderr


# --------------------------------------------------------------------------------------------- report


def test_report_rebuilds_the_last_night(built):
    done = ok("report", "--home", str(built["home"]))
    path = Path(done.stdout.strip())
    assert path == built["home"] / "reports" / NIGHT / "index.html" and path.is_file()


def test_report_for_a_night_that_never_ran_exits_5_and_writes_nothing(built):
    done = cli("report", "--date", "2099-01-01", "--home", str(built["home"]))
    assert done.returncode == 5, done.stderr
    assert "2099-01-01" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (built["home"] / "reports" / "2099-01-01").exists()


# ----------------------------------------------------------------------------------- usage and codes


def test_usage_errors_exit_2_with_the_option_name(tmp_path):
    done = cli("generate", "--out", str(tmp_path), "--days", "zero")
    assert done.returncode == 2
    assert "'--days'" in done.stderr and "Try 'clickrec generate --help' for help" in done.stderr
    assert "BadParameter" not in done.stderr
    unknown = cli("status", "--no-such-option")
    assert unknown.returncode == 2 and "--no-such-option" in unknown.stderr


def test_no_arguments_prints_help_without_an_error_name():
    done = cli()
    assert done.returncode in (0, 2)
    out = done.stdout + done.stderr
    assert "Usage: clickrec" in out and "nightly" in out
    assert "NoArgsIsHelpError" not in out and "error:" not in out


def test_version():
    done = ok("--version")
    assert done.stdout.startswith("clickrec ") and done.stdout.split()[1][0].isdigit()


def test_a_bad_choice_fails_at_parse_time_before_prefect_starts(tmp_path):
    home = tmp_path / "home"
    t = time.monotonic()
    done = cli("backfill", "--source", "synthetic", "--path", str(tmp_path), "--start", "2014-04-01",
               "--end", "2014-04-02", "--retrain", "weekly", "--home", str(home))
    assert done.returncode == 2 and "'--retrain'" in done.stderr and "weekly" in done.stderr
    assert time.monotonic() - t < 30
    assert not (home / "prefect").exists()
    proto = cli("evaluate", "--protocol", "P9", "--model", "pop")
    assert proto.returncode == 2 and "'--protocol'" in proto.stderr


def test_only_names_the_unknown_model_and_the_known_ones(built):
    done = cli("nightly", "--source", "synthetic", "--path", str(built["landing"]), "--date", NIGHT,
               "--home", str(built["home"]), "--only", "pop,typo")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "'typo'" in line and "gru4rec" in line and "multvae" in line


@pytest.mark.parametrize(("toml", "needle"), [
    ("[night]\ntop_nn = 3\n", "unknown key 'night.top_nn'"),
    ('[night]\ngate_tolerance = "five percent"\n', "gate_tolerance"),
    ("[night]\ntop_n = -3\n", "top_n"),
    ("[night.features]\nwindow_dayz = 3\n", "unknown key 'night.features.window_dayz'"),
    ("[night.models.mutlvae]\nepochs = 1\n", "mutlvae"),
    ("top_n = 3\n", "unknown key 'top_n' (night settings live under [night]"),
    ("[night]\ntop_n = \n", "not valid TOML"),
])
def test_a_bad_night_config_is_one_line_naming_the_key(built, tmp_path, toml, needle):
    config = tmp_path / "night.toml"
    config.write_text(toml)
    done = cli("nightly", "--source", "synthetic", "--path", str(built["landing"]), "--date", NIGHT,
               "--home", str(built["home"]), "--config", str(config))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error:") and needle in line and "Traceback" not in done.stderr


def test_runtime_failures_carry_their_exit_code(built, tmp_path):
    nothing = cli("report", "--home", str(tmp_path / "no-home"))
    assert nothing.returncode == 5 and "no warehouse yet" in nothing.stderr
    missing = cli("ingest", "--source", "synthetic", "--path", str(tmp_path / "missing"), "--home", str(tmp_path / "h"))
    assert missing.returncode == 1 and missing.stderr.startswith("error:")


def test_a_night_held_by_another_run_exits_4_and_quiet_is_one_line(built, tmp_path):
    from datetime import date

    from tasks.common.config import Home
    from tasks.common.locks import night_lock

    home = tmp_path / "home"
    shutil.copytree(built["home"], home)
    with night_lock(Home.resolve(home), date.fromisoformat(NIGHT)):
        done = cli("--quiet", "nightly", "--source", "synthetic", "--path", str(built["landing"]), "--date", NIGHT,
                   "--home", str(home), "--only", "pop")
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert line.startswith("error:") and "already running" in line


# ------------------------------------------------------------------------------- evaluate and bench


@pytest.mark.skipif(not (SHARED_DATA / "ml-100k").is_dir(), reason="../shared/data/ml-100k is absent")
def test_evaluate_smallest(tmp_path):
    out = tmp_path / "eval.json"
    ok("evaluate", "--protocol", "p1", "--model", "pop", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["protocol"] == "P1" and result["model"] == "pop"
    assert 0 < result["metrics"]["HR@20"] < 1


def test_bench_ingest_smallest(tmp_path):
    out = tmp_path / "bench.json"
    done = ok("bench", "ingest", "--rows", "1000", "--files", "2", "--json", str(out), "--workdir", str(tmp_path / "w"))
    result = json.loads(out.read_text())
    assert result["files"] == 2  # the log is spread over the files asked for
    # The three sides read the same 1,000 lines; the floor loaded every one of them.
    assert result["rows"] == result["floor_rows"] == result["rows_accepted"] == 1000
    assert "ratio=" in done.stdout and "floor_ratio=" in done.stdout


def test_bench_floor_runs_the_pipelines_checks(tmp_path):
    """The floor is the pipeline's own checked pass, not a bare read: a line the checks reject (an
    unparseable timestamp, a missing item) is not loaded, so the floor's rows are the accepted ones."""
    import queue

    from tasks.tools.bench_ingest import _floor

    log = tmp_path / "clicks-2014-04-01.dat"
    good = [f"{s},2014-04-01T00:0{s}:29.863Z,2144482{s}0,0," for s in range(1, 6)]
    log.write_text("\n".join([*good, "6,not-a-time,214448260,0,", "7,2014-04-01T00:09:29.863Z,,0,"]) + "\n")
    out: queue.Queue = queue.Queue()
    _floor([str(log)], str(tmp_path / "w"), str(log), out)
    assert out.get_nowait()["rows"] == 5


def test_bench_child_that_dies_fails_the_bench():
    """A benchmark child that dies without reporting fails the bench with its exit code (it used to
    leave the parent waiting on the queue forever)."""
    import threading

    from tasks.tools.bench_ingest import _run_child

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            _run_child(os._exit, 3)  # os._exit(3, queue) raises TypeError in the child: it exits 1, unreported
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test inspects
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout=120)  # a guard against the old hang, not a synchronisation
    assert not caller.is_alive(), "the bench still waits on a dead child"
    assert isinstance(outcome[0], RuntimeError) and "exit code 1" in str(outcome[0])


@pytest.mark.skipif(not (SHARED_DATA / "ml-100k").is_dir(), reason="../shared/data/ml-100k is absent")
def test_bench_train_smallest():
    done = ok("bench", "train", "--model", "multdae", "--epochs", "1", "--synthetic-users", "0", "--param", "epochs=1")
    result = json.loads(done.stdout)
    assert result["peak_rss_mb"] > 0


def test_bench_nightly_smallest(tmp_path):
    out = tmp_path / "bench.json"
    ok("bench", "nightly", "--clicks", "10000", "--items", "100", "--days", "3", "--json", str(out))
    stages = [s["stage"] for s in json.loads(out.read_text())["stages"]]
    assert stages and all(isinstance(s, str) for s in stages)


# ------------------------------------------------------------------------------------------- signals


def _start_night(home: Path, landing: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "nightly", "--source", "synthetic", "--path", str(landing),
         "--date", NIGHT, "--home", str(home), "--only", ONLY, "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
        start_new_session=True)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_a_signal_stops_the_command_and_leaves_no_prefect_server(built, tmp_path, sig, code):
    home = tmp_path / "home"
    shutil.copytree(built["home"], home)  # Prefect's database comes along: no cold start
    prefect_home = home / "prefect"
    proc = _start_night(home, built["landing"], built["config"])
    try:
        line = proc.stderr.readline()  # handshake: printed once the server is up and the flow starts
        while line and "started" not in line:
            line = proc.stderr.readline()
        assert "started" in line, proc.stderr.read()
        assert proc.poll() is None and servers(prefect_home), "the run should hold a temporary server"
        t = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert rc == code, rest[-2000:]
    assert elapsed < 10
    if sig != signal.SIGKILL:
        [msg] = [ln for ln in rest.splitlines() if ln.strip()]
        assert signal.Signals(sig).name in msg and "run the same command again" in msg
    assert wait_until(lambda: not servers(prefect_home), timeout=15), servers(prefect_home)
