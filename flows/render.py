"""Terminal rendering of results (rich tables). Presentation only."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough that tables do not wrap into columns of words
    console = Console(width=160)


def _table(title: str, rows: list[dict]) -> Table:
    t = Table(title=title, show_lines=False)
    if not rows:
        t.add_column("(none)")
        return t
    for col in rows[0]:
        t.add_column(str(col), justify="right" if isinstance(rows[0][col], int | float) else "left")
    for r in rows:
        t.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()])
    return t


def print_ingest(result: dict) -> None:
    tot = result["totals"]
    day = f" day {result['day']}" if result.get("day") else ""
    console.print(
        f"[bold]{result['run_id']}[/bold]{day}: read {tot['rows_read']:,}  accepted {tot['rows_accepted']:,}  "
        f"quarantined {tot['rows_quarantined']:,}  duplicates {tot['rows_duplicate']:,}"
        + (f"  other days {tot['rows_other_days']:,}" if tot.get("rows_other_days") else "")
        + f"  -> partitions {', '.join(result['days_written']) or '(none)'}"
    )


def print_status(st: dict) -> None:
    if st["database"] is None:
        console.print(f"no warehouse yet at {st['home']} (run `clickrec ingest` first)")
        return
    console.print(f"warehouse {st['database']}   lake {st['lake']}")
    console.print(_table("raw.clicks by day", st["partitions"]))
    console.print(_table("quarantine", st["quarantine"]))
    console.print(_table("last ingest runs", st["runs"]))


def print_rows(columns: list[str], rows: list[tuple]) -> None:
    t = Table(show_lines=False)
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    console.print(t)


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
        console.print(f"note: {n}")
    if result.get("report"):
        console.print(f"report: {result['report']}")
