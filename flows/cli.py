"""The ``clickrec`` command line. Every error is one line on stderr and a non-zero exit code.

Set ``CLICKREC_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="clickrec: click logs -> DuckDB/Parquet -> deep recommenders -> SQL tables.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print ratios against a baseline measured in the same run.")
app.add_typer(bench_app, name="bench")

HomeOpt = Annotated[str | None, typer.Option("--home", help="Home folder (default $CLICKREC_HOME or ./warehouse).")]
JsonOpt = Annotated[str | None, typer.Option("--json", help="Also write the result as JSON to this path.")]
WarmOpt = Annotated[bool, typer.Option("--warm-start", help="Start each model from its last published checkpoint.")]


def _quiet_environment() -> None:
    # Embedded defaults: Prefect without a server, no telemetry anywhere, quiet logs on a terminal.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Prefect would print failed task tracebacks; the CLI prints one line instead (override to debug).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _write_json(path: str | None, payload: object) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=str))


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
    from tasks.config import parse_day
    from tasks.synth import write_yoochoose_days

    paths = write_yoochoose_days(out, days=days, clicks_per_day=clicks_per_day, seed=seed, n_items=items,
                                 start_date=parse_day(start, "--start"), with_user=True)
    typer.echo(f"wrote {len(paths)} daily files ({days * clicks_per_day:,} clicks) to {out}")


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="A landing file or folder.")],
    date: Annotated[str | None, typer.Option("--date", help="Take only this day and replace it whole.")] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Ingest and validate landing files into the lake and raw.clicks."""
    from flows.ingest import ingest_flow
    from flows.render import print_ingest

    _precheck(source, path, date=date)
    result = ingest_flow(source=source, path=str(path), day=date, home=home)
    print_ingest(result)
    _write_json(json_out, result)


@app.command()
def backfill(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="Landing folder.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    retrain: Annotated[str, typer.Option(help="last: train once at the end; daily: every night; none.")] = "last",
    config: Annotated[Path | None, typer.Option(help="TOML overrides of the night's configuration.")] = None,
    warm_start: WarmOpt = False,
    home: HomeOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Ingest + validate every day of a range (fanned out), then train once at the end or every night."""
    from flows.nightly import backfill as backfill_flow
    from flows.render import print_ingest, print_night

    _precheck(source, path, start=start, end=end)
    result = backfill_flow(start=start, end=end, source=source, path=str(path), home=home, retrain=retrain,
                           config=str(config) if config else None, warm_start=warm_start)
    for r in result["ingested"]:
        print_ingest(r)
    for n in result["nights"]:
        print_night(n)
    _write_json(json_out, result)


@app.command()
def nightly(
    source: Annotated[str, typer.Option(help="Source profile name or .toml path.")],
    path: Annotated[Path, typer.Option(help="Landing folder.")],
    date: Annotated[str | None, typer.Option("--date", help="The night D (default: yesterday).")] = None,
    home: HomeOpt = None,
    config: Annotated[Path | None, typer.Option(help="TOML overrides of the night's configuration.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated models to train (default: all).")] = None,
    warm_start: WarmOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """One night: ingest D, validate, features, train, evaluate (P4), gate, publish, report."""
    from flows.nightly import nightly as nightly_flow
    from flows.render import print_night

    _precheck(source, path, date=date)
    result = nightly_flow(run_date=date, source=source, path=str(path), home=home,
                          config=str(config) if config else None, only=_split(only), warm_start=warm_start)
    print_night(result)
    _write_json(json_out, result)


@app.command()
def query(
    sql_text: Annotated[str, typer.Argument(metavar="SQL", help="A query against the published database.")],
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
) -> None:
    """Run an analyst query read-only against published.duckdb (never blocks a nightly run)."""
    from flows.render import print_rows
    from tasks.query import run_query

    columns, rows = run_query(_home(home), sql_text, limit=limit)
    if as_json:
        typer.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2, default=str))
    else:
        print_rows(columns, rows)


@app.command()
def report(
    date: Annotated[str | None, typer.Option("--date", help="The night (default: the last one).")] = None,
    home: HomeOpt = None,
) -> None:
    """(Re)build a night's HTML report and print where it is."""
    from tasks.config import parse_day
    from tasks.report import build_report
    from tasks.status import latest_run_date

    h = _home(home)
    day = parse_day(date) if date else latest_run_date(h)
    typer.echo(str(build_report(h, day)))


@app.command()
def status(home: HomeOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Partitions, row counts, quarantine and the last runs."""
    from flows.render import print_status
    from tasks.status import warehouse_status

    st = warehouse_status(_home(home))
    if as_json:
        typer.echo(json.dumps(st, indent=2, default=str))
    else:
        print_status(st)


@app.command()
def evaluate(
    protocol: Annotated[str, typer.Option(help="P1 | P2 | P3")],
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
        str | None,
        typer.Option(help="Start from a night profile's model settings (sessionrec, movielens): what the nightly trains."),
    ] = None,
) -> None:
    """Train a model on a protocol's training data and evaluate it (full ranking, conservative ties)."""
    from tasks.evaluate import print_table, run_evaluation

    result = run_evaluation(
        protocol.upper(), model, data, seed, _params(param), refit=refit, tuning=tuning, profile=profile
    )
    print_table(result)
    _write_json(json_out, result)


@bench_app.command("ingest")
def bench_ingest(
    rows: Annotated[int, typer.Option(min=1000)] = 10_000_000,
    json_out: JsonOpt = None,
    workdir: Annotated[Path | None, typer.Option(help="Scratch folder (default a temp dir).")] = None,
) -> None:
    """Bare DuckDB CSV->Parquet COPY vs the full ingest+validate path on the same generated log."""
    from tasks.bench_ingest import bench_ingest as run

    result = run(rows, workdir)
    typer.echo(
        f"rows={result['rows']:,}  bare={result['bare_seconds']:.2f}s  pipeline={result['pipeline_seconds']:.2f}s  "
        f"ratio={result['ratio']:.2f}  peak_rss={result['peak_rss_mb']:.0f} MB"
    )
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
    from tasks.bench_nightly import bench_nightly as run

    result = run(clicks, items, days, workdir)
    rows = result["stages"]
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("stage", "seconds", "peak_rss_mb"), k))
    print_rows(keys, [tuple(r.get(k, "") for k in keys) for r in rows])
    _write_json(json_out, result)


@bench_app.command("train")
def bench_train(
    model: Annotated[str, typer.Option(help="gru4rec | narm | neumf | multvae | ...")],
    data: Annotated[Path | None, typer.Option(help="Data folder (default ../shared/data).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    synthetic_clicks: Annotated[int, typer.Option(help="Session models: synthetic log size (0 skips).")] = 10_000_000,
    synthetic_users: Annotated[int, typer.Option(help="User models: synthetic users.")] = 100_000,
    synthetic_items: Annotated[int, typer.Option(help="User models: synthetic items.")] = 50_000,
    param: Annotated[list[str] | None, typer.Option(help="User models: config override KEY=VALUE (JSON value), repeatable.")] = None,
    peer: Annotated[str | None, typer.Option(help="multvae / neumf: 'recbole' also times RecBole's epoch (if installed).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Training / scoring throughput next to this machine's matmul peak (and a peer), measured in the same run."""
    if model in ("gru4rec", "narm"):
        from tasks.bench_session_train import bench_session_train

        result = bench_session_train(model=model, data_dir=data, epochs=epochs, synthetic_clicks=synthetic_clicks)
    else:
        from tasks.bench_user_train import bench_user_train

        result = bench_user_train(model=model, data_dir=data, epochs=epochs, synthetic_users=synthetic_users,
                                  synthetic_items=synthetic_items, overrides=_params(param), peer=peer)
    typer.echo(json.dumps(result, indent=2, default=str))
    _write_json(json_out, result)


@app.command()
def demo(home: HomeOpt = None, days: int = 7, clicks_per_day: int = 10_000) -> None:
    """The main job end to end on embedded defaults: generate, backfill, run a night, query the results."""
    from flows.demo import run_demo

    run_demo(_home(home), days=days, clicks_per_day=clicks_per_day)


def _precheck(source: str, path: Path, **days: str | None) -> None:
    """Refuse bad arguments before a flow (and its temporary Prefect server) starts."""
    from tasks.config import parse_day
    from tasks.ingest import list_input_files
    from tasks.profiles import load_profile

    load_profile(source)
    for flag, value in days.items():
        if value is not None:
            parse_day(value, f"--{flag}")
    list_input_files(path)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _home(home: str | None):
    from tasks.config import Home

    return Home.resolve(home)


def _params(items: list[str] | None) -> dict:
    from tasks.config import UserInputError

    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"--param {item!r}: expected key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    import click

    _quiet_environment()
    try:
        app(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI's contract: one line, never a traceback
        if os.environ.get("CLICKREC_DEBUG"):
            raise
        from tasks.config import UserInputError

        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "" if isinstance(exc, UserInputError) else f"{type(exc).__name__}: "
        typer.echo(f"error: {kind}{msg}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
