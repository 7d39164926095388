"""The flow's single writer step: record trained versions and their figures, gate, promote."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from tasks.common.sqlfiles import sql
from tasks.publish.decision import PRIMARY, GateDecision, decide


def record_result(con: duckdb.DuckDBPyConnection, run_id: str, run_date: date, meta: dict, result: dict) -> None:
    key = {"model": result["model"], "version": result["version"], "run_date": run_date}
    con.execute(sql("night/record_model_run"), key)
    con.execute(
        sql("night/insert_model_run"),
        key | {
            "run_id": run_id, "window_start": meta["train_start"], "window_end": meta["valid_day"],
            "params": json.dumps(result["params"], sort_keys=True, default=str), "device": result["device"],
            "train_seconds": result["train_seconds"], "checkpoint_path": result["checkpoint_path"],
            "warm_start_from": result.get("warm_start_from"),
        },
    )
    con.execute(sql("night/delete_eval_metrics"), key)
    if result["metrics"]:
        metrics_in = pa.Table.from_pylist(
            result["metrics"],
            schema=pa.schema([("protocol", pa.string()), ("metric", pa.string()), ("k", pa.int32()), ("value", pa.float64())]),
        )
        con.register("metrics_in", metrics_in)
        try:
            con.execute(sql("night/insert_eval_metrics"), key | {"run_id": run_id})
        finally:
            con.unregister("metrics_in")


def figure(result: dict, protocol: str, metric: str, k: int) -> float | None:
    for r in result["metrics"]:
        if r["protocol"] == protocol and r["metric"] == metric and r["k"] == k:
            return float(r["value"])
    return None


def gate(con: duckdb.DuckDBPyConnection, run_date: date, result: dict, tolerance: float) -> GateDecision:
    protocol, metric, k = PRIMARY[result["family"]]
    rows = con.execute(
        sql("night/champion"),
        {"model": result["model"], "protocol": protocol, "metric": metric, "k": k, "run_date": run_date},
    ).fetchall()
    champion_version, champion = (rows[0][0], rows[0][2]) if rows else (None, None)
    what = f"{protocol} {metric}@{k}"
    rescored = result.get("champion_on_test")
    if rescored and rescored["version"] == champion_version:
        on_d = figure(rescored, protocol, metric, k)
        if on_d is not None:  # both models tested on the same day D
            champion, what = on_d, f"{what} on {run_date}"
    return decide(result["model"], result["version"], figure(result, protocol, metric, k), champion,
                  champion_version, tolerance, what)


def set_status(con: duckdb.DuckDBPyConnection, run_date: date, d: GateDecision, status: str) -> None:
    con.execute(sql("night/set_status"), {"model": d.model, "version": d.version, "run_date": run_date,
                                          "status": status, "reason": d.reason})


def load_candidates(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
