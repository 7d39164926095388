"""The ``clickrec`` command line. Every error is one line on stderr and an exit code a scheduler can act on.

Exit codes (README, "Exit codes"): 0 done; 1 unexpected error or bad input; 2 usage (unknown option,
bad value, bad ``--config``, unknown ``--only`` model); 3 data refused by validation; 4 the warehouse
or the night is held by another run; 5 nothing to do; 130 / 143 stopped by SIGINT / SIGTERM.

Set ``CLICKREC_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import enum
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Annotated, get_args

import typer

from tasks.common.run_date import Retrain as RetrainChoice

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="clickrec: click logs -> DuckDB/Parquet -> deep recommenders -> SQL tables.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print ratios against a baseline measured in the same run.")
app.add_typer(bench_app, name="bench")

HomeOpt = Annotated[str | None, typer.Option("--home", help="Home folder (default $CLICKREC_HOME or ./warehouse).")]
JsonOpt = Annotated[str | None, typer.Option("--json", help="Also write the result as JSON to this path.")]
WarmOpt = Annotated[bool, typer.Option("--warm-start", help="Start each model from its last published checkpoint.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Refuse the run when a guard rail trips (exit 3).")]


# The choices typer offers, from the one definition of them (tasks/common/run_date.py).
Retrain = enum.StrEnum("Retrain", {name: name for name in get_args(RetrainChoice)})


class Protocol(enum.StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P3_rsc15 = "P3-rsc15"
    P3_ml100k = "P3-ml100k"


class NightProfile(enum.StrEnum):
    sessionrec = "sessionrec"
    movielens = "movielens"


class Peer(enum.StrEnum):
    recbole = "recbole"


class UsageProblem(Exception):  # noqa: N818 - a usage error found after parsing (exit 2, one line)
    exit_code = 2


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("clickrec")
        except PackageNotFoundError:
            v = "unknown"
        typer.echo(f"clickrec {v}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors (no progress lines).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Prefect's run logs (INFO) on stderr, progress lines included.")] = False,
) -> None:
    """clickrec: click logs -> DuckDB/Parquet -> deep recommenders -> SQL tables."""
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other", param_hint="--quiet / --verbose")
    global _quiet
    _quiet = quiet
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
        os.environ["PREFECT_INTERNAL_LOGGING_LEVEL"] = "WARNING"
    elif quiet:
        os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"
        os.environ["PREFECT_INTERNAL_LOGGING_LEVEL"] = "CRITICAL"
    else:  # the default: the night's own progress lines (stages, epochs) on stderr, Prefect's logs not
        from tasks.common.progress import show_on_stderr

        show_on_stderr(rich_terminal=True)


_quiet = False


def _started(what: str) -> None:
    """One line on stderr once the temporary server is up and the flow starts (not with --quiet)."""
    if not _quiet:
        typer.echo(f"{what} started", err=True)


def _quiet_environment() -> None:
    # Embedded defaults: no telemetry anywhere, quiet logs on a terminal.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Prefect would print failed task tracebacks; the CLI prints one line instead (--verbose to see them).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_INTERNAL_LOGGING_LEVEL", "CRITICAL")  # e.g. "EventsWorker - Still processing"
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _write_json(path: str | None, payload: object) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(_dumps(payload))


def _dumps(payload: object) -> str:
    from tasks.report.query import _json_value

    def walk(v):
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return _json_value(v)

    return json.dumps(walk(payload), indent=2, default=str, allow_nan=False)


# ------------------------------------------------------------------ embedded Prefect: one home, no orphans

_server: subprocess.Popen | None = None
_server_lock = threading.Lock()


def _die_with_parent(parent: int) -> None:
    """preexec_fn of the Prefect server: SIGKILL it when the CLI process dies, whatever ended it."""
    if sys.platform.startswith("linux"):  # elsewhere: the CLI's exit paths and signal handlers stop it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the CLI died before prctl took effect
        os._exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_planned_port: int | None = None


def _prefect_env(home) -> None:
    """Before anything imports prefect (its settings are read at import): Prefect's state under the home
    folder, and PREFECT_API_URL pointing at the temporary server :func:`_start_prefect` starts later. A
    configured ``PREFECT_API_URL`` (a real server) or ``PREFECT_HOME`` is used as is."""
    global _planned_port
    os.environ.setdefault("PREFECT_HOME", str(home.root / "prefect"))
    if os.environ.get("PREFECT_API_URL") or _planned_port is not None:
        return
    if "prefect" in sys.modules:  # too late to point it anywhere: Prefect starts its own server
        return
    _planned_port = _free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_planned_port}/api"


def _start_prefect() -> None:
    """Start the temporary API server planned by :func:`_prefect_env`; it dies with this process.

    Prefect's own temporary server is a subprocess that outlives a killed CLI; this one is started the
    same way (uvicorn on Prefect's app factory), with PR_SET_PDEATHSIG so the kernel ends it with us."""
    global _server, _planned_port
    if _planned_port is None or _server is not None:
        return
    import importlib.util

    [package] = importlib.util.find_spec("prefect").submodule_search_locations
    prefect_home = Path(os.environ["PREFECT_HOME"])
    prefect_home.mkdir(parents=True, exist_ok=True)
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    for _attempt in range(3):
        port = _planned_port
        log = open(prefect_home / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env |= {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        with _server_lock:
            _server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(package).parent),
                 "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "error", "--lifespan", "on"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509
            )
        log.close()
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _server.poll() is None:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 - our own localhost
                    if r.status == 200:
                        return
            time.sleep(0.2)  # polling a starting server, not test synchronisation
        _stop_server()
        if "prefect" in sys.modules:  # its settings already hold this URL: only this port will do
            continue
        _planned_port = _free_port()
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_planned_port}/api"
    raise RuntimeError(f"the temporary Prefect server did not start (see {prefect_home / 'server.log'})")


def _drain_prefect() -> None:
    """Send Prefect's queued logs and events while our server still answers (else: 'Error logging to API')."""
    if "prefect" not in sys.modules:
        return
    if os.environ.get("PREFECT_LOGGING_LEVEL") != "INFO":
        # Not --verbose: a drain that times out on a loaded machine warns on stderr ("EventsWorker - Still
        # processing items"), which would break the one-line contract; the command's own output is done.
        import logging

        logging.disable(logging.WARNING)
    if _server is None:
        return
    with contextlib.suppress(Exception):
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all(timeout=3)


def _stop_server() -> None:
    global _server
    with _server_lock:
        proc, _server = _server, None
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


atexit.register(_stop_server)


# ------------------------------------------------------------------------------------------ signals

_stopping = threading.Lock()


def _stop_on_signal(signum: int) -> None:
    """One line, the server stopped, exit 128 + signal. The pipeline is crash-safe (a killed night is
    simply run again), so stopping mid-step is the same as SIGKILL minus the orphans."""
    if not _stopping.acquire(blocking=False):
        return
    name = signal.Signals(signum).name
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        os.write(2, f"clickrec: stopped by {name}; nothing half-done is visible, run the same command again\n".encode())
    with contextlib.suppress(Exception):
        _stop_server()
    os._exit(128 + signum)


def _install_signal_handlers() -> None:
    """SIGINT / SIGTERM stop the command within seconds, even while the main thread is inside DuckDB or
    torch: the C-level handler writes the signal number to a pipe that a watcher thread reads."""
    if threading.current_thread() is not threading.main_thread():  # main() called from a thread: no handlers
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: _stop_on_signal(signum))
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            data = os.read(r, 16)
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):
                    _stop_on_signal(signum)

    threading.Thread(target=watch, name="clickrec-signals", daemon=True).start()


# ------------------------------------------------------------------------------------------ commands


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder for the daily files.")],
    days: Annotated[int, typer.Option(min=1)] = 7,
    clicks_per_day: Annotated[int, typer.Option(min=1)] = 100_000,
    seed: int = 0,
    items: Annotated[int, typer.Option(min=10)] = 5000,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2014-04-01",
) -> None:
    """Write a synthetic click log with planted structure (profile ``synthetic``)."""
    from tasks.common.config import parse_day
    from tasks.tools.synth import write_yoochoose_days

    paths = write_yoochoose_days(out, days=days, clicks_per_day=clicks_per_day, seed=seed, n_items=items,
                                 start_date=parse_day(start, "--start"), with_user=True)
    typer.echo(f"wrote {len(paths)} daily files ({days * clicks_per_day:,} clicks) to {out}")


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="A landing file or folder.")],
    date: Annotated[str | None, typer.Option("--date", help="Take only this day and replace it whole.")] = None,
    strict: StrictOpt = False,
    allow_outside_links: Annotated[bool, typer.Option(
        "--allow-outside-links", help="Accept symlinks in the landing folder that lead outside it.")] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Ingest and validate landing files into the lake and raw.clicks."""
    _prefect_env(_home(home))
    _precheck(source, path, date=date)
    _start_prefect()
    from flows.ingest import ingest_flow
    from flows.render import print_ingest

    _started(f"ingest {path} ({source})")
    result = ingest_flow(source=source, path=str(path), day=date, home=home, strict=strict,
                         allow_outside_links=allow_outside_links)
    print_ingest(result)
    _write_json(json_out, result)


@app.command()
def backfill(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="Landing folder.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    retrain: Annotated[Retrain, typer.Option(help="last: train once at the end; daily: every night; none.")] = Retrain.last,
    config: Annotated[Path | None, typer.Option(help="Night TOML ([night], [night.features], [night.models.NAME]) over the profile and tuned file.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated models to train (default: all).")] = None,
    warm_start: WarmOpt = False,
    strict: StrictOpt = False,
    home: HomeOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Ingest + validate every day of a range (fanned out), then train once at the end or every night."""
    _prefect_env(_home(home))
    _precheck(source, path, start=start, end=end)
    models = _check_night(source, config, only, home)
    from flows.nightly import backfill as backfill_flow
    from flows.render import print_ingest, print_night

    _start_prefect()
    _started(f"backfill {start} .. {end} ({source})")
    result = backfill_flow(start=start, end=end, source=source, path=str(path), home=home, retrain=retrain.value,
                           config=str(config) if config else None, only=models, warm_start=warm_start,
                           strict=strict)
    for r in result["ingested"]:
        print_ingest(r)
    for n in result["nights"]:
        print_night(n)
    _write_json(json_out, result)


@app.command()
def nightly(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="Landing folder.")],
    date: Annotated[str | None, typer.Option(
        "--date", help="The night D (default: yesterday in CLICKREC_TIMEZONE; a scheduled deployment run: the "
                       "night before its scheduled start, in the schedule's timezone).")] = None,
    home: HomeOpt = None,
    config: Annotated[Path | None, typer.Option(help="Night TOML ([night], [night.features], [night.models.NAME]) over the profile and tuned file.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated models to train (default: all).")] = None,
    warm_start: WarmOpt = False,
    strict: StrictOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """One night: ingest D, validate, features, train, evaluate (P4), gate, publish, report."""
    _prefect_env(_home(home))
    _precheck(source, path, date=date)
    models = _check_night(source, config, only, home)
    from flows.nightly import nightly as nightly_flow
    from flows.render import print_night

    strict_kw = {"strict": strict}
    _start_prefect()

    _started(f"nightly {date or '(yesterday)'} ({source})")
    result = nightly_flow(run_date=date, source=source, path=str(path), home=home,
                          config=str(config) if config else None, only=models, warm_start=warm_start,
                          **strict_kw)
    print_night(result)
    _write_json(json_out, result)


@app.command()
def query(
    sql_text: Annotated[str | None, typer.Argument(
        metavar="[SQL]", help="A query against the published database; '-' reads it from stdin.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the SQL from this file ('-': stdin).")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="NAME=VALUE: SET VARIABLE before the query (getvariable('NAME') in the SQL); repeatable.")] = None,
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows (NaN and inf as null).")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="At most this many rows.")] = None,
) -> None:
    """Run an analyst query read-only against published.duckdb (never blocks a nightly run)."""
    from flows.render import print_rows
    from tasks.report.query import format_rows_json, run_query

    if sql_text is not None and file is not None:
        raise typer.BadParameter("give the SQL as an argument or with --file, not both", param_hint="--file")
    if file is not None and str(file) != "-":
        try:
            text = file.read_text()
        except OSError as exc:
            raise typer.BadParameter(f"{file}: {exc.strerror or exc}", param_hint="--file") from None
    elif sql_text == "-" or file is not None or (sql_text is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif sql_text is None:
        raise typer.BadParameter("no SQL: give it as an argument, with --file PATH, or '-' for stdin",
                                 param_hint="SQL")
    else:
        text = sql_text
    if not text.strip():
        raise typer.BadParameter("the SQL is empty", param_hint="SQL")
    columns, rows = run_query(_home(home), text, limit=limit, variables=_vars(var))
    if as_json:
        typer.echo(format_rows_json(columns, rows))
    else:
        print_rows(columns, rows)


@app.command()
def tables(
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The published tables and views with their columns, types and descriptions (sql/published/columns.yaml)."""
    from tasks.publish.dictionary import published_tables
    from tasks.report.query import format_tables_text

    listing = published_tables(_home(home))
    typer.echo(_dumps(listing) if as_json else format_tables_text(listing))


@app.command()
def report(
    date: Annotated[str | None, typer.Option("--date", help="The night (default: the last one).")] = None,
    home: HomeOpt = None,
) -> None:
    """(Re)build a night's HTML report and print where it is (exit 5 for a night that never ran)."""
    from tasks.common.config import parse_day
    from tasks.report.status import latest_run_date, require_night

    h = _home(home)
    day = parse_day(date, "--date") if date else latest_run_date(h)
    require_night(h, day)
    from tasks.report.html import build_report

    typer.echo(str(build_report(h, day)))


@app.command()
def status(home: HomeOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Partitions, row counts, quarantine and the last runs."""
    from flows.render import print_status
    from tasks.report.status import warehouse_status

    st = warehouse_status(_home(home))
    if as_json:
        typer.echo(_dumps(st))
    else:
        print_status(st)


@app.command()
def evaluate(
    protocol: Annotated[Protocol, typer.Option(case_sensitive=False, help="The protocol (../shared/PROTOCOLS.md).")],
    model: Annotated[str, typer.Option(help="Model name (see recmodels/registry.py).")],
    data: Annotated[Path | None, typer.Option(help="Data folder (default ../shared/data).")] = None,
    json_out: JsonOpt = None,
    seed: int = 0,
    param: Annotated[list[str] | None, typer.Option("--param", help="Hyperparameter override key=value.")] = None,
    refit: Annotated[
        bool, typer.Option(help="ml-100k user models: refit the best epoch count on train + valid, as the nightly does.")
    ] = False,
    tuning: Annotated[
        bool, typer.Option(help="rsc15 protocols: train_tr -> train_valid instead of train_full -> test.")
    ] = False,
    profile: Annotated[
        NightProfile | None,
        typer.Option(help="Start from a night profile's model settings: what the nightly trains."),
    ] = None,
) -> None:
    """Train a model on a protocol's training data and evaluate it (full ranking, conservative ties)."""
    _check_model(model, "--model")
    from tasks.tools.evaluate import print_table, run_evaluation

    result = run_evaluation(protocol.value, model, data, seed, _params(param), refit=refit, tuning=tuning,
                            profile=profile.value if profile else None)
    print_table(result)
    _write_json(json_out, result)


class TuneProtocol(enum.StrEnum):
    P1 = "P1"
    P2 = "P2"


@app.command()
def tune(
    model: Annotated[str, typer.Option(help="Model to tune (a night label such as ease, or a registry name).")],
    source: Annotated[str | None, typer.Option(help="Tune on this source's last night (train -> D-1).")] = None,
    protocol: Annotated[TuneProtocol | None, typer.Option(case_sensitive=False,
                                                          help="Tune on P1's / P2's validation split.")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Trials to add (default 20 without --minutes).")] = None,
    minutes: Annotated[float | None, typer.Option(min=0.01, help="Stop starting trials after this long.")] = None,
    seed: int = 0,
    space: Annotated[str | None, typer.Option(help="Search space (e.g. gru4rec-bprmax; default: the model's first).")] = None,
    metric: Annotated[str | None, typer.Option(help="Validation metric to maximise (default MRR@20 / NDCG@10).")] = None,
    date: Annotated[str | None, typer.Option("--date", help="--source: the night D (default: the last).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Fixed setting key=value (not searched).")] = None,
    data: Annotated[Path | None, typer.Option(help="--protocol: data folder (default ../shared/data).")] = None,
    confirm: Annotated[int, typer.Option(min=0, help="Re-train this many best trials (and trial 0) on more seeds; choose the best mean (0: the study's best).")] = 3,
    confirm_seeds: Annotated[int, typer.Option(min=1, help="Seeds added per confirmed trial.")] = 2,
    home: HomeOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Tune a model's settings with Optuna on validation data (never the test); write <home>/tuned/<source>.toml."""
    _check_model(model.removesuffix("-user"), "--model")
    if (source is None) == (protocol is None):
        raise UsageProblem("give exactly one of --source PROFILE and --protocol P1|P2")
    if date is not None:
        from tasks.common.config import parse_day

        parse_day(date, "--date")
    from tasks.tools.tune import TuneRequest, print_summary, run_tuning

    req = TuneRequest(model=model, protocol=protocol.value if protocol else None, source=source, night=date,
                      trials=trials, minutes=minutes, seed=seed, space=space, metric=metric,
                      fixed=_params(param), data_dir=data, confirm=confirm, confirm_seeds=confirm_seeds)
    result = run_tuning(_home(home).root, req, log=lambda line: typer.echo(line, err=True))
    print_summary(result)
    _write_json(json_out, result)


@bench_app.command("ingest")
def bench_ingest(
    rows: Annotated[int, typer.Option(min=1000)] = 10_000_000,
    json_out: JsonOpt = None,
    workdir: Annotated[Path | None, typer.Option(help="Scratch folder (default a temp dir).")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="One landing file spanning N days (default: 10 daily files).")] = None,
    files: Annotated[int, typer.Option(min=1, help="Daily files the rows are spread over (without --days).")] = 10,
) -> None:
    """Bare DuckDB CSV->Parquet COPY vs the full ingest+validate path on the same generated log."""
    with tempfile.TemporaryDirectory(prefix="clickrec-bench-prefect-") as prefect_root:
        # The temporary server `clickrec ingest` starts, here once for the bench's pipeline child.
        _prefect_env(_home(prefect_root))
        _start_prefect()
        from flows.ingest import run_ingest_command
        from tasks.tools.bench_ingest import bench_ingest as run
        from tasks.tools.bench_ingest import format_result

        try:
            result = run(run_ingest_command, rows, workdir, days=days, files=files)
        finally:
            _drain_prefect()
            _stop_server()  # before its folder goes
    typer.echo(format_result(result))
    _write_json(json_out, result)


@bench_app.command("nightly")
def bench_nightly(
    clicks: Annotated[int, typer.Option(min=10_000)] = 3_300_000,
    items: Annotated[int, typer.Option(min=100)] = 50_000,
    days: Annotated[int, typer.Option(min=3)] = 7,
    json_out: JsonOpt = None,
    workdir: Annotated[Path | None, typer.Option(help="Scratch folder (default a temp dir, removed after).")] = None,
) -> None:
    """Time and peak memory per stage of a night on a synthetic log (each stage in its own process)."""
    from flows.render import print_rows
    from tasks.tools.bench_nightly import bench_nightly as run

    result = run(clicks, items, days, workdir)
    rows = result["stages"]
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("stage", "seconds", "peak_rss_mb"), k))
    print_rows(keys, [tuple(r.get(k) for k in keys) for r in rows])
    _write_json(json_out, result)


@bench_app.command("train")
def bench_train(
    model: Annotated[str, typer.Option(help="gru4rec | narm | neumf | multvae | ...")],
    data: Annotated[Path | None, typer.Option(help="Data folder (default ../shared/data).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    synthetic_clicks: Annotated[int, typer.Option(min=0, help="Session models: synthetic log size (0 skips).")] = 10_000_000,
    synthetic_users: Annotated[int, typer.Option(min=0, help="User models: synthetic users.")] = 100_000,
    synthetic_items: Annotated[int, typer.Option(min=1, help="User models: synthetic items.")] = 50_000,
    param: Annotated[list[str] | None, typer.Option(help="User models: config override KEY=VALUE (JSON value), repeatable.")] = None,
    peer: Annotated[Peer | None, typer.Option(help="multvae / neumf: also time RecBole's epoch (if installed).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Training / scoring throughput next to this machine's matmul peak (and a peer), measured in the same run."""
    _check_model(model, "--model")
    if model in ("gru4rec", "narm"):
        from tasks.tools.bench_session_train import bench_session_train

        result = bench_session_train(model=model, data_dir=data, epochs=epochs, synthetic_clicks=synthetic_clicks)
    else:
        from tasks.tools.bench_user_train import bench_user_train

        result = bench_user_train(model=model, data_dir=data, epochs=epochs, synthetic_users=synthetic_users,
                                  synthetic_items=synthetic_items, overrides=_params(param),
                                  peer=peer.value if peer else None)
    typer.echo(_dumps(result))
    _write_json(json_out, result)


@app.command()
def demo(home: HomeOpt = None, days: Annotated[int, typer.Option(min=3)] = 7,
         clicks_per_day: Annotated[int, typer.Option(min=100)] = 10_000) -> None:
    """The main job end to end on embedded defaults: generate, backfill, run a night, query the results."""
    h = _home(home)
    _prefect_env(h)
    _start_prefect()
    from flows.demo import run_demo

    run_demo(h, days=days, clicks_per_day=clicks_per_day)


# ------------------------------------------------------------------------------------------ helpers


def _precheck(source: str, path: Path, **days: str | None) -> None:
    """Refuse bad arguments before a flow (and its temporary Prefect server) starts."""
    from tasks.common.config import parse_day
    from tasks.common.profiles import load_profile
    from tasks.ingest.landing import list_input_files

    load_profile(source)
    for flag, value in days.items():
        if value is not None:
            parse_day(value, f"--{flag}")
    list_input_files(path)


def _check_night(source: str, config: Path | None, only: str | None, home: str | None) -> list[str] | None:
    """The night's config (every layer: profile, tuned file, ``--config``) validated and ``--only`` checked
    against its models, before anything starts."""
    from tasks.common.night import load_night

    cfg = load_night(source, config, _home(home))
    models = _split(only)
    if only is not None and not models:
        raise UsageProblem("--only: no model named")
    known = cfg.model_labels()
    unknown = [m for m in models or [] if m not in known]
    if unknown:
        raise UsageProblem(f"--only: unknown model {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return models


def _check_model(model: str, flag: str) -> None:
    from recmodels.registry import MODELS

    if model not in MODELS:
        raise UsageProblem(f"{flag}: unknown model {model!r}; known: {', '.join(sorted(MODELS))}")


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _home(home: str | None):
    from tasks.common.config import Home

    return Home.resolve(home)


def _params(items: list[str] | None) -> dict:
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"--param {item!r}: expected key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _vars(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageProblem(f"--var {item!r}: expected NAME=VALUE")
        out[key] = value
    return out


def _sql_last(argv: list[str]) -> list[str]:
    """``clickrec query "$(cat X.sql)"``: SQL that starts with a ``--`` comment is not an option. Any
    argument of ``query`` that starts with '-' but is no option name is moved after a ``--``."""
    if "query" not in argv or "--" in argv:
        return argv
    at = argv.index("query")
    head, rest = argv[: at + 1], argv[at + 1:]
    sql_args = [a for a in rest if a.startswith("-") and re.search(r"\s", a)]
    if not sql_args:
        return argv
    return head + [a for a in rest if a not in sql_args] + ["--", *sql_args]


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) and 0 < code < 126 else 1


def main(argv: list[str] | None = None) -> None:
    _quiet_environment()
    _install_signal_handlers()
    args = _sql_last(list(sys.argv[1:] if argv is None else argv))
    if not sys.stderr.isatty():  # logs and pipes: click's plain "Usage / Try --help / Error" lines, no boxes
        app.rich_markup_mode = None
        bench_app.rich_markup_mode = None
    try:
        from tasks.common.settings import get_settings

        get_settings()  # a bad CLICKREC_* value: exit 2 naming the variable, whatever the command
        app(args=args, prog_name="clickrec")  # typer's standalone mode: usage errors exit 2 with its message
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI's contract: one line, never a traceback
        from tasks.common.settings import debug_tracebacks

        if debug_tracebacks():
            raise
        from tasks.common.config import UserInputError

        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "" if isinstance(exc, UserInputError | UsageProblem) else f"{type(exc).__name__}: "
        typer.echo(f"error: {kind}{msg}", err=True)
        sys.exit(_exit_code(exc))
    finally:
        _drain_prefect()
        _stop_server()


if __name__ == "__main__":
    main()
