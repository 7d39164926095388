"""The night's report as data: one typed object read once from the working DB (and the GX site).

:func:`load_report_data` opens the warehouse read-only, :func:`collect_report_data` runs every query of
``sql/report/`` and returns a :class:`ReportData` of plain Python values; the page
(:mod:`tasks.report.render`) and the Prefect artifacts (:mod:`tasks.report.html`) are both drawn
from that one object, so they cannot disagree.

Sections whose tables do not exist yet (a layer not built) are skipped with a line saying so rather
than failing the night: the report is a diagnostic, and it is most needed when something is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np

from tasks.common.config import Home, UserInputError, parse_day
from tasks.common.failures import night_failures
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import connect
from tasks.report.gxdocs import DocsPage, night_pages

TRAILING_DAYS = 14  # volume / validation window: the night and the 13 days before it
SESSION_LENGTH_CAP = 30  # longer sessions share the last histogram bucket ("30+")

# (column key, header) of the metrics table: shared by the HTML and the table artifact.
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hr10", "HR@10"),
    ("hr20", "HR@20"),
    ("mrr20", "MRR@20"),
    ("ndcg10", "NDCG@10"),
    ("cov20", "COV@20"),
)
# The cutoff each protocol is read at (its primary metric's k, as in sql/report/metric_history.sql).
PROTOCOL_K = {"P4-user": 10}
DEFAULT_K = 20
# The two stages of recommendations: what the gate published, what every model scored before it.
PUBLISHED, CANDIDATES = "recs.recommendations", "recs.candidates"

Row = dict[str, Any]  # one result row of a sql/report/ query, column name -> value


@dataclass
class ReportData:
    """Everything the page and the artifacts show; plain Python values only."""

    run_date: date
    run_id: str | None
    start: date  # first day of the volume window
    train_start: date | None
    train_end: date | None
    train_window_source: str
    tables: set[str] = field(default_factory=set)
    daily_rows: list[Row] = field(default_factory=list)  # from the first day with data to the night
    ingest_runs: list[Row] = field(default_factory=list)
    validation: Row = field(default_factory=lambda: {"checks": 0, "failed": 0})
    validation_failures: list[Row] = field(default_factory=list)
    quarantine: list[Row] = field(default_factory=list)
    docs: list[DocsPage] = field(default_factory=list)  # the night's GX Data Docs pages
    docs_index: DocsPage | None = None
    metrics: list[Row] = field(default_factory=list)
    history: dict[tuple[str, str, str], list[tuple[date, float]]] = field(default_factory=dict)
    beyond: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)  # (model, version, protocol)
    model_runs: list[Row] = field(default_factory=list)
    popularity: list[int] = field(default_factory=list)
    catalogue_items: int | None = None
    catalogue_source: str = ""
    coverage: list[Row] = field(default_factory=list)
    session_lengths: list[tuple[int, int]] = field(default_factory=list)
    window_users: Row = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # passed in by the flow
    detected: list[str] = field(default_factory=list)  # found by the report itself
    skipped: list[str] = field(default_factory=list)  # sections without their tables

    def history_by_protocol(self) -> dict[str, tuple[str, dict[str, list[tuple[date, float]]]]]:
        """protocol -> (its primary metric, model -> nights): one chart per protocol."""
        out: dict[str, tuple[str, dict[str, list[tuple[date, float]]]]] = {}
        for (model, protocol, metric), points in sorted(self.history.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.setdefault(protocol, (metric, {}))[1][model] = points
        return out

    def protocol_k(self, protocol: str) -> int:
        return PROTOCOL_K.get(protocol, DEFAULT_K)


# --------------------------------------------------------------------------------------------- reading


def _rows(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql(name), params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _has(data: ReportData, *tables: str) -> bool:
    return all(t in data.tables for t in tables)


def _skip(data: ReportData, section: str, *tables: str) -> bool:
    """True (and a line in the report) when a section's tables are not there yet."""
    missing = [t for t in tables if t not in data.tables]
    if missing:
        data.skipped.append(f"{section}: {', '.join(missing)} does not exist yet")
    return bool(missing)


def _merge_gate(metrics: list[dict], model_runs: list[dict], gate: list[dict] | None) -> list[dict]:
    """Metrics rows with the gate's decision and reason: the flow's ``gate`` list wins over the DB.

    Versions that were trained but have no metrics (failed runs) and gate entries for versions
    without metrics still get a row, so every decision of the night is visible.
    """
    gate = gate or []

    def gate_for(model: str, version: str | None) -> dict | None:
        for g in gate:
            if g.get("model") == model and g.get("version") in (None, version):
                return g
        return None

    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for m in metrics:
        g = gate_for(m["model"], m["version"])
        out.append(
            m
            | {
                "decision": (g or {}).get("decision") or m.get("status"),
                "reason": (g or {}).get("reason") or m.get("gate_reason"),
            }
        )
        seen.add((m["model"], m["version"]))
    empty = {k: None for k, _ in METRIC_COLUMNS} | {"n_predictions": None, "protocol": None}
    for r in model_runs:
        if (r["model"], r["version"]) in seen:
            continue
        g = gate_for(r["model"], r["version"])
        out.append(
            empty
            | {
                "model": r["model"],
                "version": r["version"],
                "decision": (g or {}).get("decision") or r.get("status"),
                "reason": (g or {}).get("reason") or r.get("gate_reason"),
            }
        )
        seen.add((r["model"], r["version"]))
    for g in gate:
        key = (str(g.get("model")), str(g.get("version")))
        if any(g.get("model") == s[0] and g.get("version") in (None, s[1]) for s in seen):
            continue
        out.append(
            empty
            | {
                "model": key[0],
                "version": g.get("version"),
                "decision": g.get("decision"),
                "reason": g.get("reason"),
            }
        )
    return out


def failure_notes(con: duckdb.DuckDBPyConnection, day: date) -> list[str]:
    """The night's failed runs (the flows' on-failure hook records them), one line each: they lead the
    page's notes, so a night that failed and was rerun says so."""
    return [f"failed run: {f['flow']} {f['run_name'] or ''} ({f['state']}, {f['failed_at']:%Y-%m-%d %H:%M} UTC): "
            f"{f['error']}" for f in night_failures(con, day)]


def collect_report_data(
    con: duckdb.DuckDBPyConnection,
    run_date: date | str,
    run_id: str | None = None,
    gate: list[dict] | None = None,
    stage_seconds: dict[str, float] | None = None,
    notes: list[str] | None = None,
    *,
    trailing_days: int = TRAILING_DAYS,
) -> ReportData:
    """Read every figure of the report for night ``run_date`` from the open working DB, section by section."""
    day = parse_day(run_date, "run_date")
    start = day - timedelta(days=max(trailing_days, 1) - 1)
    data = ReportData(
        run_date=day,
        run_id=run_id,
        start=start,
        train_start=None,
        train_end=None,
        train_window_source="",
        stage_seconds=dict(stage_seconds or {}),
        notes=[str(n) for n in (notes or [])],
    )
    data.tables = {r["name"] for r in _rows(con, "report/tables")}
    data.notes[:0] = failure_notes(con, day)
    _read_volumes(con, data)
    _read_models(con, data, gate)
    _read_train_window(con, data, trailing_days)
    _read_popularity(con, data)
    if not _skip(data, "session lengths", "features.sessions"):
        data.session_lengths = [
            (int(a), int(b))
            for a, b in con.execute(sql("report/session_lengths"), {"cap": SESSION_LENGTH_CAP}).fetchall()
        ]
    _detect(data)
    return data


def _read_volumes(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Section 1: rows per day, ingest accounting, validation, quarantine."""
    day, window = data.run_date, {"start": data.start, "end": data.run_date}
    if not _skip(data, "rows per day", "raw.clicks"):
        # Every day gets a row, a day that loaded nothing is exactly what to notice ...
        by_day = {r["event_date"]: r for r in _rows(con, "report/daily_rows", window)}
        zero = {"rows": 0, "sessions": 0, "rows_with_user": 0, "items": 0}
        # ... from the first day with data: bars for days before the log starts say nothing.
        first = min(by_day, default=None)
        data.daily_rows = [
            by_day.get(first + timedelta(days=i), {"event_date": first + timedelta(days=i)} | zero)
            for i in range((day - first).days + 1)
        ] if first is not None and first <= day else []
    if not _skip(data, "ingest accounting", "ops.ingest_files"):
        data.ingest_runs = _rows(con, "report/ingest_runs", window)
        if not _skip(data, "validation", "ops.validation_results"):
            data.validation = _rows(con, "report/validation_counts", window)[0]
            data.validation_failures = _rows(con, "report/validation_failures", window)
        if not _skip(data, "quarantine", "quarantine.clicks"):
            data.quarantine = _rows(con, "report/quarantine_reasons", window)


def _read_models(con: duckdb.DuckDBPyConnection, data: ReportData, gate: list[dict] | None) -> None:
    """Sections 2-4 and 7: metrics with the gate's decisions, beyond-accuracy, history, training time."""
    night = {"run_date": data.run_date}
    if _skip(data, "models", "models.eval_metrics", "models.model_runs"):
        if gate:
            data.metrics = _merge_gate([], [], gate)
        return
    metrics = _rows(con, "report/metrics", night)
    data.model_runs = _rows(con, "report/model_runs", night)
    data.metrics = _merge_gate(metrics, data.model_runs, gate)
    for r in _rows(con, "report/beyond_metrics", night):
        key = f"{r['metric']}@{r['k']}" if r["k"] is not None else r["metric"]
        data.beyond.setdefault((r["model"], r["version"], r["protocol"]), {})[key] = r["value"]
    for r in _rows(con, "report/metric_history", night):
        data.history.setdefault((r["model"], r["protocol"], r["metric"]), []).append((r["run_date"], r["value"]))
    w = _rows(con, "report/window_models", night)[0]
    if w["start_date"] is not None and w["end_date"] is not None:
        data.train_start, data.train_end, data.train_window_source = w["start_date"], w["end_date"], "models.model_runs"


def _read_train_window(con: duckdb.DuckDBPyConnection, data: ReportData, trailing_days: int) -> None:
    """The training window the popularity figures read: as the models recorded it, else as features
    were built, else assumed (the days before the night, as the nightly trains on them)."""
    day = data.run_date
    if data.train_start is None and _has(data, "features.builds"):
        fb = _rows(con, "report/window_features", {"run_date": day})
        if fb:
            data.train_start, data.train_end = fb[0]["start_date"], fb[0]["end_date"]
            data.train_window_source = "latest features.builds before the night"
    if data.train_start is None:
        data.train_start, data.train_end = day - timedelta(days=max(trailing_days, 1)), day - timedelta(days=1)
        data.train_window_source = f"assumed: the {max(trailing_days, 1)} days before the night"


def _read_popularity(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Section 5: item popularity in the training window, catalogue size, catalogue coverage."""
    train = {"start": data.train_start, "end": data.train_end}
    if not _skip(data, "item popularity", "raw.clicks"):
        data.popularity = [int(r[0]) for r in con.execute(sql("report/item_popularity"), train).fetchall()]
        data.window_users = _rows(con, "report/window_users", train)[0]
    vocab = _rows(con, "report/catalogue_size")[0]["items"] if _has(data, "features.item_vocab") else 0
    if vocab:
        data.catalogue_items, data.catalogue_source = int(vocab), "features.item_vocab"
    elif data.popularity:
        data.catalogue_items, data.catalogue_source = len(data.popularity), "distinct items in the training window"
    if not _skip(data, "catalogue coverage", PUBLISHED, CANDIDATES):
        for r in _rows(con, "report/coverage", {"run_date": data.run_date}):
            share = r["items"] / data.catalogue_items if data.catalogue_items else None
            data.coverage.append(r | {"table": r["table_label"], "coverage": share})


def _detect(data: ReportData) -> None:
    """Findings worth a line at the top of the page (the flow's own notes come first)."""
    d = data.run_date
    def has_users(source: str) -> bool:
        return any(c["source"] == source and c["kind"] == "user_topn" for c in data.coverage)

    if PUBLISHED in data.tables and not has_users(PUBLISHED):
        wu = data.window_users
        window = f"{data.train_start}..{data.train_end}"
        if has_users(CANDIDATES):
            why = "user models scored users (recs.candidates: user_topn) but the gate published none"
        elif wu and wu.get("events", 0) == 0:
            why = f"raw.clicks has no events at all in the training window {window}"
        elif wu and wu.get("events_with_user", 0) == 0:
            why = (
                f"the source has no user ids: all {wu['events']:,} events of raw.clicks in the training window "
                f"{window} have user_id NULL, so user models have nobody to recommend to"
            )
        elif wu:
            why = (
                f"raw.clicks has {wu['events_with_user']:,} events of {wu['users']:,} users in {window}: "
                "see the user models' gate decisions below"
            )
        else:
            why = "raw.clicks is missing"
        data.detected.append(f"recs.recommendations has no user_topn rows for {d}: {why}.")
    if not [m for m in data.metrics if m.get("protocol")] and "models.eval_metrics" in data.tables:
        data.detected.append(
            f"No model was evaluated for {d} (models.eval_metrics has no rows for the night)."
        )
    if data.validation.get("failed"):
        data.detected.append(
            f"{data.validation['failed']:,} of {data.validation['checks']:,} expectations failed "
            f"for the ingest runs of {data.start}..{d}."
        )
    if "raw.clicks" in data.tables and not any(r["event_date"] == d and r["rows"] for r in data.daily_rows):
        data.detected.append(f"raw.clicks has no rows for the night {d}.")


def popularity_stats(counts: list[int]) -> dict[str, float | int]:
    """Long-tail figures: share of events held by the top 1/10/20 % of items, singletons."""
    if not counts:
        return {"items": 0, "events": 0, "top1": 0.0, "top10": 0.0, "top20": 0.0, "singletons": 0}
    c = np.asarray(counts, dtype=np.int64)  # already sorted descending by the SQL
    total = int(c.sum())
    cum = np.cumsum(c)

    def top(p: float) -> float:
        k = max(1, math.ceil(p * len(c)))
        return float(cum[k - 1] / total)

    return {
        "items": len(c),
        "events": total,
        "top1": top(0.01),
        "top10": top(0.10),
        "top20": top(0.20),
        "singletons": int((c == 1).sum()),
    }


def metrics_table_rows(data: ReportData) -> list[dict]:
    """The metrics table as the artifact and the page show it (same rounding in both)."""
    out = []
    for m in data.metrics:
        row: dict[str, Any] = {"model": m["model"], "version": m["version"], "protocol": m.get("protocol")}
        for key, header in METRIC_COLUMNS:
            v = m.get(key)
            row[header] = None if v is None else round(float(v), 4)
        row["n_predictions"] = None if m.get("n_predictions") is None else int(m["n_predictions"])
        row["decision"] = m.get("decision")
        row["reason"] = m.get("reason")
        out.append(row)
    return out


def _open(home: Home) -> duckdb.DuckDBPyConnection:
    """Read-only when possible; in a process that already holds the file read-write (the nightly
    flow), DuckDB refuses a second configuration, so fall back to the pipeline's own one."""
    if not home.db.exists():
        raise UserInputError(f"{home.db}: no warehouse yet, nothing to report")
    try:
        return connect(home, read_only=True)
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise
        return connect(home)


def load_report_data(
    home: Home,
    run_date: date | str,
    run_id: str | None = None,
    gate: list[dict] | None = None,
    stage_seconds: dict[str, float] | None = None,
    notes: list[str] | None = None,
    *,
    trailing_days: int = TRAILING_DAYS,
) -> ReportData:
    con = _open(home)
    try:
        data = collect_report_data(con, run_date, run_id, gate, stage_seconds, notes, trailing_days=trailing_days)
    finally:
        con.close()
    night_runs = sorted({r["run_id"] for r in data.ingest_runs if r["day"] in (None, data.run_date)})
    data.docs, data.docs_index = night_pages(home.gx, night_runs)
    return data


