"""The night's page: ``templates/night.html.j2`` (Jinja2, autoescape on) over one :class:`ReportData`.

Everything shown is prepared here as plain values (formatted cells, charts, links) so the template only
lays them out. Every data value is escaped by Jinja2; the only markup passed through unescaped is the
charts' SVG, which matplotlib wrote and escaped itself.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from tasks.report.charts import bar_chart, history_chart, model_colours, popularity_curve
from tasks.report.data import (
    METRIC_COLUMNS,
    SESSION_LENGTH_CAP,
    ReportData,
    metrics_table_rows,
    popularity_stats,
)

TEMPLATES = Path(__file__).parent / "templates"
DECISION_CLASSES = frozenset({"rejected", "failed", "published", "accepted"})  # styled decisions
LIST_FIGURES = (("COVERAGE", "coverage", "pct"), ("POPULARITY", "popularity percentile", "pct"),
                ("NOVELTY", "novelty (bits)", "num"), ("TAIL", "long-tail share", "pct"))
SEGMENT_ORDER = ("head", "tail", "returning", "new")  # then the session-length buckets, shortest first


def fmt_metric(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def fmt_int(v: float | None) -> str:
    return "–" if v is None else f"{int(round(v)):,}"


def fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def fmt_seconds(v: float | None) -> str:
    return "–" if v is None else f"{v:,.1f} s"


def fmt_bits(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _ingest_row(r: dict) -> list[str]:
    return [r["run_id"], "all" if r["day"] is None else str(r["day"]), fmt_int(r["files"]), fmt_int(r["rows_read"]),
            fmt_int(r["rows_accepted"]), fmt_int(r["rows_quarantined"]), fmt_int(r["rows_duplicate"]),
            fmt_int(r.get("rows_filtered")), fmt_int(r["rows_other_days"]), fmt_int(r.get("rows_blank")),
            r.get("flags") or ""]


def _failure_row(r: dict) -> list[str]:
    return [r["run_id"], r["batch"], r["expectation"], r["column_name"] or "", r["level"],
            fmt_int(r["unexpected_count"]), fmt_int(r["element_count"]), r["observed_value"] or ""]


def _coverage_row(c: dict) -> list[str]:
    return [c["table"], c["model"], c["model_version"], fmt_int(c["rows"]), fmt_int(c["entities"]),
            fmt_int(c["items"]), fmt_pct(c["coverage"])]


def _run_row(r: dict) -> list[str]:
    return [r["model"], r["version"], r["status"], r["device"] or "", fmt_seconds(r["train_seconds"])]


ROW_FILTERS = {
    "ingest_row": _ingest_row,
    "failure_row": _failure_row,
    "quarantine_row": lambda r: [r["reason"], fmt_int(r["rows"])],
    "coverage_row": _coverage_row,
    "session_row": lambda s: [s[0], fmt_int(s[1]), fmt_pct(s[2])],
    "run_row": _run_row,
    "stage_row": lambda kv: [kv[0], fmt_seconds(float(kv[1]))],
}

ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(metric=fmt_metric, int=fmt_int, pct=fmt_pct, seconds=fmt_seconds, bits=fmt_bits, **ROW_FILTERS)


@dataclass
class Chart:
    title: str
    svg: Markup
    protocol: str | None = None


@dataclass
class View:
    """What the template lays out, derived from the data once."""

    notes: list[str]
    volumes: Chart | None
    history: list[Chart]
    history_metric: str
    metrics: list[dict[str, Any]]
    metric_headers: list[str]
    beyond: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    popularity: dict[str, Any]
    popularity_chart: Chart | None
    sessions: list[tuple[str, int, float]]
    sessions_chart: Chart | None
    training_chart: Chart | None
    stages_chart: Chart | None
    docs: list[tuple[str, str]] = field(default_factory=list)  # (label, href relative to the page)
    docs_index: str | None = None


def _href(target: Path, page_dir: Path | None) -> str:
    rel = os.path.relpath(target, page_dir) if page_dir is not None else str(target)
    return Path(rel).as_posix()


def _segment_key(name: str) -> tuple[int, int, str]:
    if name in SEGMENT_ORDER:
        return (0, SEGMENT_ORDER.index(name), name)
    low = re.match(r"len:(\d+)", name)
    return (1, int(low.group(1)) if low else 0, name)


def _history(data: ReportData) -> tuple[list[Chart], str]:
    by_protocol = data.history_by_protocol()
    values = [v for _, (_, series) in by_protocol.items() for pts in series.values() for _, v in pts]
    if not values:
        return [], ""
    top = min(1.0, max(values) * 1.15) if max(values) > 0 else 1.0  # one scale for every protocol
    colours = model_colours([m for _, (_, series) in by_protocol.items() for m in series])
    nights = sorted({d for _, (_, series) in by_protocol.items() for pts in series.values() for d, _ in pts})
    charts = []
    metrics = set()
    for protocol, (metric, series) in by_protocol.items():
        metrics.add(metric)
        title = f"{protocol}: {metric} per night"
        charts.append(Chart(title, Markup(history_chart(series, title=title, ylabel=metric, ylim=(0.0, top),
                                                        colours=colours, nights=nights)), protocol))
    return charts, ", ".join(sorted(metrics))


def _beyond(data: ReportData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lists, segments = [], []
    for (model, version, protocol), figures in sorted(data.beyond.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        k = data.protocol_k(protocol)
        lists.append({"model": model, "version": version, "protocol": protocol, "k": k,
                      "values": [(figures.get(f"{name}@{k}"), kind) for name, _, kind in LIST_FIGURES]})
        names = sorted({key[2:] for key in figures if key.startswith("n:")}, key=_segment_key)
        segments.append({
            "model": model, "version": version, "protocol": protocol, "k": k,
            "cells": [(name, figures.get(f"HR:{name}@{k}"), figures.get(f"NDCG:{name}@{k}"), figures.get(f"n:{name}"))
                      for name in names],
        })
    return lists, segments


def _bars(title: str, labels: list[str], values: list[float], xlabel: str, ylabel: str, **kw: Any) -> Chart | None:
    if not labels:
        return None
    return Chart(title, Markup(bar_chart(labels, values, title=title, xlabel=xlabel, ylabel=ylabel, **kw)))


def build_view(data: ReportData, page_dir: Path | None = None) -> View:
    dr = data.daily_rows
    volumes = _bars("raw.clicks rows per day", [str(r["event_date"]) for r in dr], [r["rows"] for r in dr],
                    "event date", "accepted rows", highlight=str(data.run_date))
    history, history_metric = _history(data)
    beyond, segments = _beyond(data)
    sl = data.session_lengths
    labels = [f"{n}+" if n == SESSION_LENGTH_CAP else str(n) for n, _ in sl]
    total = sum(c for _, c in sl) or 1
    runs = [r for r in data.model_runs if r.get("train_seconds") is not None]
    stages = list(data.stage_seconds.items())
    return View(
        notes=[*data.notes, *data.detected],
        volumes=volumes,
        history=history,
        history_metric=history_metric,
        metrics=[r | {"decision_class": r["decision"] if r["decision"] in DECISION_CLASSES else None}
                 for r in metrics_table_rows(data)],
        metric_headers=[h for _, h in METRIC_COLUMNS],
        beyond=beyond,
        segments=segments,
        popularity=popularity_stats(data.popularity),
        popularity_chart=Chart("events per item by popularity rank", Markup(popularity_curve(
            data.popularity, title="events per item by popularity rank"))) if data.popularity else None,
        sessions=[(lab, c, c / total) for lab, (_, c) in zip(labels, sl, strict=True)],
        sessions_chart=_bars("sessions by length (latest feature build)", labels, [c for _, c in sl],
                             "session length (clicks)", "sessions"),
        training_chart=_bars("training time per model version", [f"{r['model']} {r['version']}" for r in runs],
                             [float(r["train_seconds"]) for r in runs], "seconds", "model version", horizontal=True),
        stages_chart=_bars("seconds per stage", [k for k, _ in stages], [float(v) for _, v in stages],
                           "seconds", "stage", horizontal=True),
        docs=[(p.label, _href(p.path, page_dir)) for p in data.docs],
        docs_index=_href(data.docs_index.path, page_dir) if data.docs_index else None,
    )


def render_report_html(data: ReportData, page_dir: Path | None = None) -> str:
    """The whole page as a string (self-contained: inline CSS and SVG, no scripts, no remote assets).

    ``page_dir``: the folder the page is written to, so links to Data Docs are relative to it."""
    return ENV.get_template("night.html.j2").render(d=data, v=build_view(data, page_dir))
