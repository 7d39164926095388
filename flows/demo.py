"""The README's main command: a synthetic multi-day log, backfilled and summarised, on embedded defaults."""

from __future__ import annotations

from datetime import date, timedelta

from flows.ingest import backfill_ingest_flow, task_runner_for_fanout
from flows.render import console, print_ingest, print_status
from tasks.config import Home
from tasks.status import warehouse_status
from tasks.synth import write_yoochoose_days

START = date(2014, 4, 1)


def run_demo(home: Home, days: int = 7, clicks_per_day: int = 50_000, seed: int = 0) -> dict:
    home.ensure()
    landing = home.root / "landing"
    console.rule("[bold]1. generate a synthetic click log")
    paths = write_yoochoose_days(landing, days=days, clicks_per_day=clicks_per_day, seed=seed,
                                 start_date=START, with_user=True)
    console.print(f"{len(paths)} daily files, {days * clicks_per_day:,} clicks in {landing}")
    console.rule("[bold]2. backfill: ingest + validate every day (Prefect flow, days fanned out)")
    end = START + timedelta(days=days - 1)
    results = backfill_ingest_flow.with_options(task_runner=task_runner_for_fanout())(
        source="synthetic", path=str(landing), start=START.isoformat(), end=end.isoformat(), home=str(home.root)
    )
    for r in results:
        print_ingest(r)
    console.rule("[bold]3. what the warehouse holds")
    st = warehouse_status(home)
    print_status(st)
    console.print(
        f"\nQuery it: `bash run.sh status`, or open {home.db} read-only with DuckDB (tables raw.clicks, "
        f"quarantine.clicks, ops.ingest_files, ops.validation_results).\n"
        f"Parquet lake: {home.clicks_lake}/event_date=YYYY-MM-DD/*.parquet   GX Data Docs: {home.gx}"
    )
    return st
