"""The nightly report's entry points: one offline HTML page per night plus Prefect artifacts.

:func:`build_report` reads the night once (:func:`tasks.report.data.load_report_data`), makes the
night's GX Data Docs pages readable offline (:mod:`tasks.report.gxdocs`), renders the page from its
Jinja2 template (:mod:`tasks.report.render`) and writes ``<home>/reports/<run_date>/index.html``
atomically. :func:`publish_report_artifacts` publishes the summary and the metrics table to Prefect
from the same :class:`ReportData` (so the artifact and the page cannot disagree when built by
:func:`build_report_task`).
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common.config import Home, parse_day
from tasks.report.data import (
    ReportData,
    load_report_data,
    metrics_table_rows,
    popularity_stats,
)
from tasks.report.gxdocs import make_offline
from tasks.report.render import fmt_int, fmt_pct, render_report_html

__all__ = [
    "METRICS_ARTIFACT_KEY",
    "REPORT_ARTIFACT_KEY",
    "build_report",
    "build_report_task",
    "load_report_data",
    "popularity_stats",
    "publish_report_artifacts",
    "report_path",
    "write_report",
]

REPORT_ARTIFACT_KEY = "nightly-report"
METRICS_ARTIFACT_KEY = "nightly-metrics"


def report_path(home: Home, run_date: date | str) -> Path:
    return home.reports / str(parse_day(run_date, "run_date")) / "index.html"


def write_report(home: Home, data: ReportData) -> Path:
    """Write the page atomically (temp file in the same folder + os.replace): a reader never sees half.

    The night's Data Docs pages (and GX's index, rebuilt by every validation) are made readable
    offline first, so every link of the page opens without network."""
    path = home.inside(report_path(home, data.run_date))
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.docs or data.docs_index:
        make_offline(home.gx, [p.path for p in data.docs])
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".html.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_report_html(data, path.parent))
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


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


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
