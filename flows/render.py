"""Terminal rendering of results (rich tables). Presentation only."""

from __future__ import annotations

import math
from datetime import date, datetime, time

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# One rule for what reaches a terminal, the analysts' query output's (tasks.report.query).
from tasks.report.query import is_number as _is_number
from tasks.report.query import printable as clean

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough that tables do not wrap into columns of words
    console = Console(width=160)


def cell(v: object) -> Text:
    """One value as literal text (never rich markup): NULL for None, numbers with separators."""
    if v is None:
        return Text("NULL", style="dim")
    if isinstance(v, bool):
        return Text(str(v).lower())
    if isinstance(v, int):
        return Text(f"{v:,}")
    if isinstance(v, float):
        if not math.isfinite(v):
            return Text(str(v))  # nan, inf, -inf
        if v == 0 or 1e-4 <= abs(v) < 1e15:  # at most 4 decimals, no trailing zeros
            return Text(f"{v:.4f}".rstrip("0").rstrip(".") or "0")
        return Text(f"{v:.4g}")
    if isinstance(v, datetime | date | time):
        return Text(v.isoformat(sep=" ", timespec="seconds") if isinstance(v, datetime) else v.isoformat())
    if isinstance(v, bytes):
        return Text(v.hex())
    return Text(clean(str(v)))


def _add_columns(t: Table, columns: list[str], rows: list) -> None:
    for i, c in enumerate(columns):
        values = [r[i] for r in rows if r[i] is not None]
        numeric = bool(values) and all(_is_number(v) for v in values)
        t.add_column(Text(clean(str(c))), justify="right" if numeric else "left")


def _table(title: str, rows: list[dict]) -> Table:
    t = Table(title=title, show_lines=False)
    if not rows:
        t.add_column("(none)")
        return t
    columns = list(rows[0])
    values = [tuple(r.get(c) for c in columns) for r in rows]
    _add_columns(t, columns, values)
    for r in values:
        t.add_row(*[cell(v) for v in r])
    return t


def print_ingest(result: dict) -> None:
    tot = result["totals"]
    day = f" day {result['day']}" if result.get("day") else ""
    console.print(
        f"[bold]{result['run_id']}[/bold]{day}: read {tot['rows_read']:,}  accepted {tot['rows_accepted']:,}  "
        f"quarantined {tot['rows_quarantined']:,}  duplicates {tot['rows_duplicate']:,}"
        + "".join(f"  {label} {tot[k]:,}" for k, label in (("rows_filtered", "filtered"),
                  ("rows_other_days", "other days"), ("rows_blank", "blank")) if tot.get(k))
        + f"  -> partitions {', '.join(result['days_written']) or '(none)'}"
    )
    for flag in result.get("flags", []):  # guard rails: the data loaded, but a share looks wrong
        console.print(f"[yellow]guard rail:[/yellow] {escape(clean(flag))}")


def print_status(st: dict) -> None:
    if st["database"] is None:
        console.print(f"no warehouse yet at {escape(clean(st['home']))} (run `clickrec ingest` first)")
        return
    console.print(f"warehouse {escape(clean(st['database']))}   lake {escape(clean(st['lake']))}")
    console.print(_table("raw.clicks by day", st["partitions"]))
    console.print(_table("quarantine", st["quarantine"]))
    console.print(_table("last ingest runs", st["runs"]))
    console.print(_table("last nights (model versions by gate decision)", st.get("nights", [])))
    console.print(_table("failed flow runs", st.get("failures", [])))
    console.print(_table("disk use under the home folder", st.get("disk", [])))


def print_rows(columns: list[str], rows: list[tuple]) -> None:
    """Query rows as a table: values literal (markup escaped, control characters stripped), NULL as NULL,
    numeric columns right-aligned; the row count below."""
    t = Table(show_lines=False)
    _add_columns(t, list(columns), rows)
    for r in rows:
        t.add_row(*[cell(v) for v in r])
    console.print(t)
    console.print(f"({len(rows):,} row{'s' if len(rows) != 1 else ''})", highlight=False)


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_night(result: dict) -> None:
    console.print(f"[bold]night {result['run_date']}[/bold] ({result['run_id']})")
    rows = []
    for m in result["models"]:
        figs = {f"{r['metric']}@{r['k']}": r["value"] for r in m["metrics"] if r["k"] is not None}
        dec = next((d for d in result["decisions"] if d["model"] == m["model"]), {})
        rows.append({
            "model": m["model"], "version": m["version"], "train s": round(m["train_seconds"], 1),
            "HR@10": round(figs.get("HR@10", float("nan")), 4), "HR@20": round(figs.get("HR@20", float("nan")), 4),
            "MRR@20": round(figs.get("MRR@20", float("nan")), 4),
            "gate": dec.get("decision", ""), "reason": _short(dec.get("reason", "")),
        })
    console.print(_table("models (P4: trained on days < D, tested on D)", rows))
    stages = {k: round(v, 1) for k, v in result["stage_seconds"].items()}
    console.print(f"stage seconds: {stages}")
    for n in result.get("notes", []):
        console.print(Text(f"note: {clean(n)}"))
    removed = {k: v for k, v in (result.get("retention") or {}).items() if k != "skipped"}
    if removed:
        console.print(Text("retention removed: " + ", ".join(
            f"{folder} {v['removed']} ({v['mb']} MB)" for folder, v in removed.items())))
    if result.get("report"):
        console.print(Text(f"report: {result['report']}"))
