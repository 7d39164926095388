"""The README's main command: the whole product on embedded defaults, on a generated log.

Generates a multi-day synthetic click log, backfills it (ingest + validate every day, then train
once), runs the last night (ingest, validate, features, train, P4, gate, publish, report), and
shows what an analyst sees: the leaderboard and three example queries on published.duckdb.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from flows.nightly import backfill, nightly
from flows.render import console, print_night, print_rows
from tasks.common.config import Home
from tasks.common.settings import get_settings
from tasks.common.sqlfiles import sql
from tasks.report.query import run_query
from tasks.tools.synth import write_yoochoose_days

START = date(2014, 4, 1)
# The demo shows the whole product in minutes on 2 cores: short training budgets, no refit. The
# models' accuracy is measured with `clickrec evaluate` on the real data sets, not here.
DEMO_NIGHT = """\
[night]
refit_full = false
[night.models.gru4rec]
epochs = 3
[night.models.narm]
epochs = 3
[night.models.neumf]
epochs = 8
[night.models.multvae]
epochs = 15
[night.models.multdae]
epochs = 15
"""
QUERIES = (  # files of sql/analyst/, run with their default parameters
    ("leaderboard: tonight's P4 figures and gate decisions", "analyst/model_leaderboard"),
    ("champions: the model serving each kind", "analyst/champions"),
    ("analyst query 1: one user's recommendations", "analyst/user_recommendations"),
    ("analyst query 2: items similar to the most recommended item", "analyst/similar_items"),
    ("analyst query 3: data volume and quality per day", "analyst/data_quality_trend"),
)


def run_demo(home: Home, days: int = 7, clicks_per_day: int = 10_000, seed: int = 0) -> dict:
    home.ensure()
    landing = home.root / "landing"
    last = START + timedelta(days=days)  # the night after the backfilled days
    console.rule("[bold]1. generate a synthetic click log (planted popularity, clusters, sequences)")
    paths = write_yoochoose_days(landing, days=days + 1, clicks_per_day=clicks_per_day, seed=seed,
                                 start_date=START, with_user=True)
    console.print(f"{len(paths)} daily files, {(days + 1) * clicks_per_day:,} clicks in {landing}")

    console.rule(f"[bold]2. backfill {START} .. {last - timedelta(days=1)}: ingest + validate each day, train once")
    chosen = get_settings().night_config
    config = str(chosen) if chosen else None
    if config is None:
        config = str(home.root / "demo-night.toml")
        Path(config).write_text(DEMO_NIGHT)
    back = backfill(start=str(START), end=str(last - timedelta(days=1)), source="synthetic", path=str(landing),
                    home=str(home.root), retrain="last", config=config)
    console.print(f"{len(back['ingested'])} days ingested; night {back['nights'][0]['run_date']} trained")

    console.rule(f"[bold]3. the nightly run for {last}")
    result = nightly(run_date=str(last), source="synthetic", path=str(landing), home=str(home.root), config=config)
    print_night(result)

    console.rule("[bold]4. what analysts see (read-only published.duckdb)")
    for title, name in QUERIES:
        columns, rows = run_query(home, sql(name))
        console.print(f"[bold]{title}[/bold]  (sql/{name}.sql)")
        print_rows(columns, rows)
    console.print(
        f"\nReport: {result['report']}\nAnalysts: clickrec query \"SELECT ...\" --home {home.root}, or "
        f"clickrec query --file sql/analyst/model_leaderboard.sql --home {home.root} "
        f"(or duckdb -readonly {home.published_db}); examples in sql/analyst/\n"
        f"Parquet: {home.lake}/clicks/event_date=*/ and {home.lake}/recs/<table>/run_date=*/"
    )
    return result
