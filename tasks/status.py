"""What the warehouse holds: partitions, counts, quarantine, last runs (for ``clickrec status``)."""

from __future__ import annotations

from tasks.config import Home, NothingToDoError
from tasks.sqlfiles import sql
from tasks.warehouse import session


def _rows(con, name: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def warehouse_status(home: Home, last_runs: int = 10) -> dict:
    if not home.db.exists():
        return {"home": str(home.root), "database": None, "partitions": [], "quarantine": [], "runs": []}
    with session(home, read_only=True) as con:
        lake_days = sorted(p.name.split("=", 1)[1] for p in home.clicks_lake.glob("event_date=*") if p.is_dir())
        return {
            "home": str(home.root),
            "database": str(home.db),
            "lake": str(home.clicks_lake),
            "lake_partitions": lake_days,
            "partitions": _rows(con, "ops/status_partitions"),
            "quarantine": _rows(con, "ops/status_quarantine"),
            "runs": _rows(con, "ops/status_runs", {"limit": last_runs}),
        }


def latest_run_date(home: Home):
    """The last night with trained models (for ``clickrec report`` without ``--date``)."""
    if not home.db.exists():
        raise NothingToDoError(f"no warehouse yet at {home.root}")
    with session(home, read_only=True) as con:
        [(day,)] = con.execute(sql("ops/latest_run_date")).fetchall()
    if day is None:
        raise NothingToDoError("no night has run yet: run `clickrec nightly` first")
    return day


def require_night(home: Home, day) -> None:
    """``day`` is a night that ran (it trained models); otherwise there is nothing to report (exit 5)."""
    if not home.db.exists():
        raise NothingToDoError(f"no warehouse yet at {home.root}")
    with session(home, read_only=True) as con:
        [(models,)] = con.execute(sql("ops/night_exists"), {"run_date": day}).fetchall()
    if not models:
        raise NothingToDoError(f"no night ran on {day}: nothing to report (see `clickrec status` for the nights)")
