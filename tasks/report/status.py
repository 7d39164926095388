"""What the warehouse holds: partitions, counts, quarantine, last runs, nights and failed runs, disk use
(``clickrec status``)."""

from __future__ import annotations

import contextlib

from tasks.common.config import Home, NothingToDoError
from tasks.common.failures import recent_failures
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import session


def _rows(con, name: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def disk_usage(home: Home) -> list[dict]:
    """Bytes under each top-level entry of the home folder (what retention settings are about)."""
    out = []
    for entry in sorted(home.root.iterdir()) if home.root.is_dir() else []:
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
        size = 0
        for f in files:
            with contextlib.suppress(OSError):
                size += f.stat().st_size
        out.append({"path": entry.name + ("" if entry.is_file() else "/"), "mb": round(size / 2**20, 2),
                    "files": len(files)})
    return out


def warehouse_status(home: Home, last_runs: int = 10) -> dict:
    if not home.db.exists():
        return {"home": str(home.root), "database": None, "partitions": [], "quarantine": [], "runs": [],
                "nights": [], "failures": [], "disk": disk_usage(home)}
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
            "nights": _rows(con, "ops/status_nights", {"limit": last_runs}),
            "failures": recent_failures(con, last_runs),
            "disk": disk_usage(home),
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
