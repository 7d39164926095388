"""The nightly report: one offline HTML page per night plus Prefect artifacts with the same numbers.

Flow: :func:`collect_report_data` reads everything from the working DB (every query is a file in
``sql/report/``) into a :class:`ReportData`; :func:`render_report_html` turns it into a page (every
data value passes through ``html.escape``: model names, ids and reasons come from data);
:func:`build_report` writes ``<home>/reports/<run_date>/index.html`` atomically;
:func:`publish_report_artifacts` publishes the summary and the metrics table to Prefect from the
same ``ReportData`` (so the artifact and the page cannot disagree when built by
:func:`build_report_task`).

Sections whose tables do not exist yet (a layer not built) are skipped with a line saying so rather
than failing the night: the report is a diagnostic, and it is most needed when something is missing.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common.config import Home, UserInputError, parse_day
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import connect
from tasks.report.charts import bar_chart, line_chart

TRAILING_DAYS = 14  # volume / validation window: the night and the 13 days before it
SESSION_LENGTH_CAP = 30  # longer sessions share the last histogram bucket ("30+")
POPULARITY_POINTS = 100  # bars drawn for the long-tail curve (ranks sampled evenly)
REPORT_ARTIFACT_KEY = "nightly-report"
METRICS_ARTIFACT_KEY = "nightly-metrics"

# (column key, header) of the metrics table: shared by the HTML and the table artifact.
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hr10", "HR@10"),
    ("hr20", "HR@20"),
    ("mrr20", "MRR@20"),
    ("ndcg10", "NDCG@10"),
    ("cov20", "COV@20"),
)
# Published tables first, then what every model scored before the gate (recs.candidate_*).
REC_TABLES = (
    "user_topn",
    "session_next",
    "item_similar",
    "candidate_user_topn",
    "candidate_session_next",
    "candidate_item_similar",
)


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
    daily_rows: list[dict] = field(default_factory=list)
    ingest_runs: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=lambda: {"checks": 0, "failed": 0})
    validation_failures: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    history: dict[tuple[str, str, str], list[tuple[date, float]]] = field(default_factory=dict)
    model_runs: list[dict] = field(default_factory=list)
    popularity: list[int] = field(default_factory=list)
    catalogue_items: int | None = None
    catalogue_source: str = ""
    coverage: list[dict] = field(default_factory=list)
    session_lengths: list[tuple[int, int]] = field(default_factory=list)
    window_users: dict = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # passed in by the flow
    detected: list[str] = field(default_factory=list)  # found by the report itself
    skipped: list[str] = field(default_factory=list)  # sections without their tables


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
    """Read every figure of the report for night ``run_date`` from the open working DB."""
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
    window = {"start": start, "end": day}

    # 1. Volumes and validation.
    if not _skip(data, "rows per day", "raw.clicks"):
        # Every day of the window gets a row: a day that loaded nothing is exactly what to notice.
        by_day = {r["event_date"]: r for r in _rows(con, "report/daily_rows", window)}
        zero = {"rows": 0, "sessions": 0, "rows_with_user": 0, "items": 0}
        data.daily_rows = [
            by_day.get(start + timedelta(days=i), {"event_date": start + timedelta(days=i)} | zero)
            for i in range((day - start).days + 1)
        ]
    if not _skip(data, "ingest accounting", "ops.ingest_files"):
        data.ingest_runs = _rows(con, "report/ingest_runs", window)
        if not _skip(data, "validation", "ops.validation_results"):
            data.validation = _rows(con, "report/validation_counts", window)[0]
            data.validation_failures = _rows(con, "report/validation_failures", window)
        if not _skip(data, "quarantine", "quarantine.clicks"):
            data.quarantine = _rows(con, "report/quarantine_reasons", window)

    # 2./3./6. Models: metrics with gate, history, training time.
    if not _skip(data, "models", "models.eval_metrics", "models.model_runs"):
        metrics = _rows(con, "report/metrics", {"run_date": day})
        data.model_runs = _rows(con, "report/model_runs", {"run_date": day})
        data.metrics = _merge_gate(metrics, data.model_runs, gate)
        for r in _rows(con, "report/metric_history", {"run_date": day}):
            data.history.setdefault((r["model"], r["protocol"], r["metric"]), []).append(
                (r["run_date"], r["value"])
            )
        w = _rows(con, "report/window_models", {"run_date": day})[0]
        if w["start_date"] is not None and w["end_date"] is not None:
            data.train_start, data.train_end, data.train_window_source = (
                w["start_date"],
                w["end_date"],
                "models.model_runs",
            )
    elif gate:
        data.metrics = _merge_gate([], [], gate)
    if data.train_start is None and _has(data, "features.builds"):
        fb = _rows(con, "report/window_features", {"run_date": day})
        if fb:
            data.train_start, data.train_end = fb[0]["start_date"], fb[0]["end_date"]
            data.train_window_source = "latest features.builds before the night"
    if data.train_start is None:
        # Nothing recorded a window: the days before the night, as the nightly flow trains on them.
        data.train_start, data.train_end = (
            day - timedelta(days=max(trailing_days, 1)),
            day - timedelta(days=1),
        )
        data.train_window_source = f"assumed: the {max(trailing_days, 1)} days before the night"
    train = {"start": data.train_start, "end": data.train_end}

    # 4. Popularity and catalogue coverage.
    if not _skip(data, "item popularity", "raw.clicks"):
        data.popularity = [int(r[0]) for r in con.execute(sql("report/item_popularity"), train).fetchall()]
        data.window_users = _rows(con, "report/window_users", train)[0]
    vocab = _rows(con, "report/catalogue_size")[0]["items"] if _has(data, "features.item_vocab") else 0
    if vocab:
        data.catalogue_items, data.catalogue_source = int(vocab), "features.item_vocab"
    elif data.popularity:
        data.catalogue_items, data.catalogue_source = (
            len(data.popularity),
            "distinct items in the training window",
        )
    for t in REC_TABLES:
        if _skip(data, f"coverage of recs.{t}", f"recs.{t}"):
            continue
        for r in _rows(con, f"report/coverage_{t}", {"run_date": day}):
            share = r["items"] / data.catalogue_items if data.catalogue_items else None
            data.coverage.append(r | {"table": f"recs.{t}", "coverage": share})

    # 5. Sessions.
    if not _skip(data, "session lengths", "features.sessions"):
        data.session_lengths = [
            (int(a), int(b))
            for a, b in con.execute(sql("report/session_lengths"), {"cap": SESSION_LENGTH_CAP}).fetchall()
        ]

    _detect(data)
    return data


def _detect(data: ReportData) -> None:
    """Findings worth a line at the top of the page (the flow's own notes come first)."""
    d = data.run_date
    if "recs.user_topn" in data.tables and not any(c["table"] == "recs.user_topn" for c in data.coverage):
        wu = data.window_users
        window = f"{data.train_start}..{data.train_end}"
        if any(c["table"] == "recs.candidate_user_topn" for c in data.coverage):
            why = "user models scored users (recs.candidate_user_topn) but the gate published none"
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
        data.detected.append(f"recs.user_topn has no rows for {d}: {why}.")
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


# ------------------------------------------------------------------------------------------ formatting


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def fmt_metric(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def fmt_int(v: float | None) -> str:
    return "–" if v is None else f"{int(round(v)):,}"


def fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def fmt_seconds(v: float | None) -> str:
    return "–" if v is None else f"{v:,.1f} s"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """An HTML table; every cell is escaped here, so callers pass raw (formatted) strings."""
    numeric = numeric or set()
    if not rows:
        return '<p class="empty">(none)</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{_e(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def _sample_ranks(n: int, points: int = POPULARITY_POINTS) -> list[int]:
    """Evenly spaced 0-based ranks (first and last included) so the curve keeps its shape."""
    if n <= points:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, points)})


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


# ------------------------------------------------------------------------------------------ rendering

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.notes{background:#fff4d6;border:2px solid #e0a800;padding:.5rem 1rem;border-radius:4px}
.notes li{margin:.3rem 0} .meta{color:#555} .empty{color:#777;font-style:italic}
.decision-rejected,.decision-failed{color:#b00020;font-weight:bold}
.decision-published,.decision-accepted{color:#1b7a1b;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
"""


def _section_volumes(data: ReportData) -> str:
    parts = ["<h2>1. Data volumes and validation</h2>"]
    parts.append(f'<p class="meta">Window {_e(data.start)} .. {_e(data.run_date)}</p>')
    dr = data.daily_rows
    if dr:
        parts.append(
            bar_chart(
                [r["rows"] for r in dr],
                [str(r["event_date"])[5:] for r in dr],
                title="raw.clicks rows per day",
                max_labels=14,
            )
        )
    parts.append(
        _table(
            ["day", "rows", "sessions", "rows with user_id", "items"],
            [
                [
                    str(r["event_date"]),
                    fmt_int(r["rows"]),
                    fmt_int(r["sessions"]),
                    fmt_int(r["rows_with_user"]),
                    fmt_int(r["items"]),
                ]
                for r in dr
            ],
            numeric={1, 2, 3, 4},
        )
    )
    parts.append("<h3>Ingest accounting</h3>")
    parts.append(
        _table(
            ["run", "day", "files", "read", "accepted", "quarantined", "duplicates", "filtered", "other days",
             "blank", "guard rails"],
            [
                [
                    r["run_id"],
                    "all" if r["day"] is None else str(r["day"]),
                    fmt_int(r["files"]),
                    fmt_int(r["rows_read"]),
                    fmt_int(r["rows_accepted"]),
                    fmt_int(r["rows_quarantined"]),
                    fmt_int(r["rows_duplicate"]),
                    fmt_int(r.get("rows_filtered")),
                    fmt_int(r["rows_other_days"]),
                    fmt_int(r.get("rows_blank")),
                    r.get("flags") or "",
                ]
                for r in data.ingest_runs
            ],
            numeric={2, 3, 4, 5, 6, 7, 8, 9},
        )
    )
    v = data.validation
    parts.append(
        f"<h3>Validation</h3><p>{_e(fmt_int(v.get('checks')))} expectation results, "
        f"<strong>{_e(fmt_int(v.get('failed')))} failed</strong>.</p>"
    )
    parts.append(
        _table(
            ["run", "batch", "expectation", "column", "level", "unexpected", "of", "observed"],
            [
                [
                    r["run_id"],
                    r["batch"],
                    r["expectation"],
                    r["column_name"] or "",
                    r["level"],
                    fmt_int(r["unexpected_count"]),
                    fmt_int(r["element_count"]),
                    r["observed_value"] or "",
                ]
                for r in data.validation_failures
            ],
            numeric={5, 6},
        )
    )
    parts.append("<h3>Quarantine by reason</h3>")
    parts.append(
        _table(["reason", "rows"], [[r["reason"], fmt_int(r["rows"])] for r in data.quarantine], numeric={1})
    )
    return "\n".join(parts)


def _section_metrics(data: ReportData) -> str:
    parts = [f"<h2>2. Model metrics for {_e(data.run_date)}</h2>"]
    rows = metrics_table_rows(data)
    if not rows:
        parts.append('<p class="empty">(no model evaluated or gated this night)</p>')
        return "\n".join(parts)
    head = [
        "model",
        "version",
        "protocol",
        *[h for _, h in METRIC_COLUMNS],
        "n_predictions",
        "decision",
        "reason",
    ]
    body = []
    for r in rows:
        cells = [
            f"<td>{_e(r['model'])}</td>",
            f"<td>{_e(r['version'])}</td>",
            f"<td>{_e(r['protocol'])}</td>",
        ]
        cells += [f"<td class=num>{_e(fmt_metric(r[h]))}</td>" for _, h in METRIC_COLUMNS]
        cells.append(f"<td class=num>{_e(fmt_int(r['n_predictions']))}</td>")
        decision = str(r["decision"] or "")
        # The class name is built from a fixed set only: data never lands in an attribute unescaped.
        cls = (
            f' class="decision-{decision}"'
            if decision in ("rejected", "failed", "published", "accepted")
            else ""
        )
        cells.append(f"<td{cls}>{_e(decision)}</td>")
        cells.append(f"<td>{_e(r['reason'])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(
        "<table><thead><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
    return "\n".join(parts)


def _section_history(data: ReportData) -> str:
    parts = ["<h2>3. Primary metric across nights</h2>"]
    if not data.history:
        parts.append('<p class="empty">(no metrics history)</p>')
        return "\n".join(parts)
    charts = []
    for (model, protocol, metric), points in sorted(data.history.items()):
        charts.append(
            line_chart(
                [str(d) for d, _ in points],
                {model: [v for _, v in points]},
                title=f"{model} ({protocol}) {metric}",
                width=520,
                height=220,
            )
        )
    parts.append('<div class="charts">' + "\n".join(charts) + "</div>")
    return "\n".join(parts)


def _section_popularity(data: ReportData) -> str:
    parts = ["<h2>4. Item popularity and catalogue coverage</h2>"]
    parts.append(
        f'<p class="meta">Training window {_e(data.train_start)} .. {_e(data.train_end)} '
        f"({_e(data.train_window_source)})</p>"
    )
    st = popularity_stats(data.popularity)
    parts.append(
        _table(
            ["items", "events", "top 1% items hold", "top 10% hold", "top 20% hold", "items with 1 event"],
            [
                [
                    fmt_int(st["items"]),
                    fmt_int(st["events"]),
                    fmt_pct(st["top1"]),
                    fmt_pct(st["top10"]),
                    fmt_pct(st["top20"]),
                    fmt_int(st["singletons"]),
                ]
            ]
            if st["items"]
            else [],
            numeric={0, 1, 2, 3, 4, 5},
        )
    )
    if data.popularity:
        ranks = _sample_ranks(len(data.popularity))
        parts.append(
            bar_chart(
                [data.popularity[i] for i in ranks],
                [str(i + 1) for i in ranks],
                title="events per item by popularity rank",
                log_y=True,
                width=900,
                max_labels=10,
            )
        )
    parts.append(
        f'<h3>Catalogue coverage of the night\'s recommendations</h3><p class="meta">Catalogue: '
        f"{_e(fmt_int(data.catalogue_items))} items ({_e(data.catalogue_source or 'unknown')})</p>"
    )
    parts.append(
        _table(
            ["table", "model", "version", "rows", "entities", "distinct items", "coverage"],
            [
                [
                    c["table"],
                    c["model"],
                    c["model_version"],
                    fmt_int(c["rows"]),
                    fmt_int(c["entities"]),
                    fmt_int(c["items"]),
                    fmt_pct(c["coverage"]),
                ]
                for c in data.coverage
            ],
            numeric={3, 4, 5, 6},
        )
    )
    return "\n".join(parts)


def _section_sessions(data: ReportData) -> str:
    parts = ["<h2>5. Session lengths</h2>"]
    sl = data.session_lengths
    if not sl:
        parts.append('<p class="empty">(no sessions in features.sessions)</p>')
        return "\n".join(parts)
    labels = [f"{n}+" if n == SESSION_LENGTH_CAP else str(n) for n, _ in sl]
    parts.append(bar_chart([c for _, c in sl], labels, title="sessions by length (latest feature build)"))
    total = sum(c for _, c in sl)
    parts.append(
        _table(
            ["length", "sessions", "share"],
            [[lab, fmt_int(c), fmt_pct(c / total)] for lab, (_, c) in zip(labels, sl, strict=True)],
            numeric={1, 2},
        )
    )
    return "\n".join(parts)


def _section_timings(data: ReportData) -> str:
    parts = ["<h2>6. Training time and stage timings</h2>"]
    runs = [r for r in data.model_runs if r.get("train_seconds") is not None]
    if runs:
        parts.append(
            bar_chart(
                [r["train_seconds"] for r in runs],
                [r["model"] for r in runs],
                title="train seconds per model version",
            )
        )
    parts.append(
        _table(
            ["model", "version", "status", "device", "train time"],
            [
                [r["model"], r["version"], r["status"], r["device"] or "", fmt_seconds(r["train_seconds"])]
                for r in data.model_runs
            ],
            numeric={4},
        )
    )
    parts.append("<h3>Stages</h3>")
    st = list(data.stage_seconds.items())
    if st:
        parts.append(bar_chart([float(v) for _, v in st], [k for k, _ in st], title="seconds per stage"))
    parts.append(_table(["stage", "seconds"], [[k, fmt_seconds(float(v))] for k, v in st], numeric={1}))
    return "\n".join(parts)


def render_report_html(data: ReportData) -> str:
    """The whole page as a string (self-contained: inline CSS and SVG, no scripts)."""
    notes = [*data.notes, *data.detected]
    notes_html = (
        '<div class="notes"><strong>Notes</strong><ul>'
        + "".join(f"<li>{_e(n)}</li>" for n in notes)
        + "</ul></div>"
        if notes
        else ""
    )
    skipped = (
        '<p class="empty">Skipped: ' + "; ".join(_e(s) for s in data.skipped) + "</p>" if data.skipped else ""
    )
    run = f" run {_e(data.run_id)}" if data.run_id else ""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>clickrec nightly report {_e(data.run_date)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>clickrec nightly report {_e(data.run_date)}</h1>",
            f'<p class="meta">night {_e(data.run_date)}{run}</p>',
            notes_html,
            skipped,
            _section_volumes(data),
            _section_metrics(data),
            _section_history(data),
            _section_popularity(data),
            _section_sessions(data),
            _section_timings(data),
            "</body></html>",
        ]
    )


# ---------------------------------------------------------------------------------------------- entry


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
        return collect_report_data(
            con, run_date, run_id, gate, stage_seconds, notes, trailing_days=trailing_days
        )
    finally:
        con.close()


def report_path(home: Home, run_date: date | str) -> Path:
    return home.reports / str(parse_day(run_date, "run_date")) / "index.html"


def write_report(home: Home, data: ReportData) -> Path:
    """Write the page atomically (temp file in the same folder + os.replace): a reader never sees half."""
    path = home.inside(report_path(home, data.run_date))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".html.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_report_html(data))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the report is for whoever reads the home folder
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_report(
    home: Home,
    run_date: date,
    run_id: str | None = None,
    gate: list[dict] | None = None,
    stage_seconds: dict[str, float] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write ``<home>/reports/<run_date>/index.html`` from the working DB and return its path."""
    return write_report(home, load_report_data(home, run_date, run_id, gate, stage_seconds, notes))


# ------------------------------------------------------------------------------------------ artifacts


def _md(v: Any) -> str:
    """A value inside a markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    return _e(v).replace("|", "\\|").replace("\n", " ")


def report_markdown(data: ReportData, path: Path | None) -> str:
    """The artifact summary: the night's volumes, validation, gate decisions, coverage and notes."""
    night = next((r for r in data.daily_rows if r["event_date"] == data.run_date), None)
    ing = data.ingest_runs
    lines = [f"# clickrec nightly report {data.run_date}", ""]
    if path is not None:
        lines += [f"Report: `{_md(path)}` ([open]({path.as_uri()}))", ""]
    for n in [*data.notes, *data.detected]:
        lines.append(f"> **Note:** {_md(n)}")
    lines += [
        "",
        f"- raw.clicks rows on {data.run_date}: {fmt_int(night['rows']) if night else '0'}",
        f"- ingest {data.start}..{data.run_date}: read {fmt_int(sum(r['rows_read'] for r in ing))}, "
        f"accepted {fmt_int(sum(r['rows_accepted'] for r in ing))}, "
        f"quarantined {fmt_int(sum(r['rows_quarantined'] for r in ing))}, "
        f"duplicates {fmt_int(sum(r['rows_duplicate'] for r in ing))}, "
        f"filtered {fmt_int(sum(r.get('rows_filtered') or 0 for r in ing))}",
        *[f"- guard rail: {_md(r['flags'])}" for r in ing if r.get("flags")],
        f"- expectations: {fmt_int(data.validation.get('checks'))} checked, {fmt_int(data.validation.get('failed'))} failed",
        "",
        "| model | version | protocol | decision | reason |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {_md(m['model'])} | {_md(m['version'])} | {_md(m.get('protocol'))} | {_md(m.get('decision'))} | {_md(m.get('reason'))} |"
        for m in data.metrics
    ]
    if data.coverage:
        lines += ["", "| table | model | version | coverage |", "|---|---|---|---|"]
        lines += [
            f"| {_md(c['table'])} | {_md(c['model'])} | {_md(c['model_version'])} | {fmt_pct(c['coverage'])} |"
            for c in data.coverage
        ]
    return "\n".join(lines) + "\n"


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_report_artifacts(
    home: Home,
    run_date: date,
    run_id: str | None = None,
    gate: list[dict] | None = None,
    stage_seconds: dict[str, float] | None = None,
    notes: list[str] | None = None,
    *,
    data: ReportData | None = None,
    path: Path | None = None,
) -> list[str]:
    """Create the ``nightly-report`` markdown and ``nightly-metrics`` table artifacts; return their ids.

    Only meaningful inside a flow or task run: outside one it does nothing and returns ``[]`` (so a
    CLI or a test can call the report code freely). Pass ``data`` (as :func:`build_report_task` does)
    so the artifacts carry exactly the page's numbers; otherwise the DB is read again.
    """
    if not _in_prefect_run():
        return []
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if data is None:
        data = load_report_data(home, run_date, run_id, gate, stage_seconds, notes)
    if path is None:
        candidate = report_path(home, data.run_date)
        path = candidate if candidate.exists() else None
    md_id = create_markdown_artifact(
        markdown=report_markdown(data, path),
        key=REPORT_ARTIFACT_KEY,
        description=f"clickrec nightly report {data.run_date}",
    )
    table_id = create_table_artifact(
        table=[
            {k: (str(v) if v is not None and not isinstance(v, int | float) else v) for k, v in r.items()}
            for r in metrics_table_rows(data)
        ]
        or [{"model": None, "note": f"no model evaluated on {data.run_date}"}],
        key=METRICS_ARTIFACT_KEY,
        description=f"model metrics and gate decisions for {data.run_date}",
    )
    return [str(md_id), str(table_id)]


@task(name="build-report", cache_policy=NO_CACHE)
def build_report_task(
    home: Home,
    run_date: date,
    run_id: str | None = None,
    gate: list[dict] | None = None,
    stage_seconds: dict[str, float] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Prefect wrapper: read once, write the page, publish artifacts from the same numbers."""
    data = load_report_data(home, run_date, run_id, gate, stage_seconds, notes)
    path = write_report(home, data)
    publish_report_artifacts(home, run_date, data=data, path=path)
    return path
