"""The night's single writer step: record trained versions and their figures, decide, promote, publish.

The decisions themselves are in ``tasks.publish.decision``; this module reads the champion, writes
``models.model_runs`` / ``models.eval_metrics`` and the candidate tables, and builds published.duckdb.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tasks.common.config import Home
from tasks.common.faults import crash_point
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import session
from tasks.features.bundle import bundle_meta
from tasks.publish.decision import (
    GateDecision,
    Status,
    Verdict,
    gate_figure,
    gate_result,
    select_autoencoder,
    verdict,
)
from tasks.publish.published import build_published, promote, write_candidates


def record_result(con: duckdb.DuckDBPyConnection, run_id: str, run_date: date, meta: dict, result: dict) -> None:
    key = {"model": result["model"], "version": result["version"], "run_date": run_date}
    con.execute(sql("models/record_model_run"), key)
    con.execute(
        sql("models/insert_model_run"),
        key | {
            "run_id": run_id, "window_start": meta["train_start"], "window_end": meta["valid_day"],
            "params": json.dumps(result["params"], sort_keys=True, default=str), "device": result["device"],
            "train_seconds": result["train_seconds"], "checkpoint_path": result["checkpoint_path"],
            "warm_start_from": result.get("warm_start_from"),
        },
    )
    con.execute(sql("models/delete_eval_metrics"), key)
    if result["metrics"]:
        metrics_in = pa.Table.from_pylist(
            result["metrics"],
            schema=pa.schema([("protocol", pa.string()), ("metric", pa.string()), ("k", pa.int32()), ("value", pa.float64())]),
        )
        con.register("metrics_in", metrics_in)
        try:
            con.execute(sql("models/insert_eval_metrics"), key | {"run_id": run_id})
        finally:
            con.unregister("metrics_in")


def champion_figure(con: duckdb.DuckDBPyConnection, run_date: date, result: dict) -> tuple[str | None, float | None]:
    """The published champion of ``result``'s model before ``run_date``, and its stored gate figure."""
    fig = gate_figure(result)
    rows = con.execute(
        sql("models/champion"),
        {"model": result["model"], "protocol": fig.protocol, "metric": fig.metric, "k": fig.k, "run_date": run_date},
    ).fetchall()
    return (rows[0][0], rows[0][2]) if rows else (None, None)


def gate(con: duckdb.DuckDBPyConnection, run_date: date, result: dict, tolerance: float) -> GateDecision:
    """The gate for ``result`` against its champion (re-scored on ``run_date`` where the night did)."""
    champion_version, champion = champion_figure(con, run_date, result)
    return gate_result(result, champion, champion_version, tolerance, run_date)


def set_status(con: duckdb.DuckDBPyConnection, run_date: date, v: Verdict) -> None:
    """Write a version's verdict (status and reason) to ``models.model_runs``."""
    con.execute(sql("models/set_status"), {"model": v.model, "version": v.version, "run_date": run_date,
                                           "status": Status(v.status).value, "reason": v.reason})


def load_candidates(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _record_one(con: duckdb.DuckDBPyConnection, run_id: str, run_date: date, meta: dict, result: dict,
                tolerance: float, selected: str | None) -> dict[str, str]:
    record_result(con, run_id, run_date, meta, result)
    for kind, path in result["outputs"].items():
        c = load_candidates(path)
        write_candidates(con, kind, run_date, result["model"], result["version"], c["entity_ids"], c["item_idx"],
                         c["scores"])
    d = gate(con, run_date, result, tolerance)
    v = verdict(result, d, selected)
    if v.status is Status.PUBLISHED:
        promote(con, run_date, result["model"], result["version"])
    set_status(con, run_date, v)
    return v.to_dict()


def record_night(home: Home, run_id: str, run_date: date, bundle: str | Path, results: list[dict[str, Any]],
                 tolerance: float, retention_days: int) -> list[dict[str, str]]:
    """Record every result of the night, decide each, promote the winners, then rebuild published.duckdb.
    Returns one decision per result (``model``, ``version``, ``decision`` (a :class:`Status` value), ``reason``)."""
    meta = bundle_meta(Path(bundle))
    selected = select_autoencoder(results)
    with session(home) as con:
        decisions = [_record_one(con, run_id, run_date, meta, r, tolerance, selected) for r in results]
    crash_point("publish-after-promote")
    build_published(home, retention_days=retention_days)
    return decisions
