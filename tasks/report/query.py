"""Analysts' SQL on the published database (``clickrec query``), never on the working one.

The connection is read-only, so any write (DROP, INSERT, CREATE ...) fails inside DuckDB, and it
shares the file with other analysts; it never blocks the pipeline, which replaces the file by rename
(tasks/publish/published.py). File-system access is switched off too: the command answers questions about the
published file, it is not a way to write files (COPY TO) or attach other databases. For the Parquet
lake, use duckdb / polars on ``lake/recs`` directly.

Output, for the terminal and for programs: NULL as NULL, numbers right-aligned, data never interpreted
(escape sequences and control characters stripped), and JSON that is JSON (NaN / inf as null).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb

from tasks.common.config import Home, UserInputError
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import open_file

# CSI / OSC / other ESC sequences first (their parameters are printable), then any C0/C1 control left.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def run_query(home: Home, sql_text: str, limit: int | None = None,
              variables: dict[str, str] | None = None) -> tuple[list[str], list[tuple]]:
    """Run the analyst's own SQL on ``home.published_db`` read-only; columns and (at most ``limit``) rows.

    ``variables`` are set first (``SET VARIABLE name = 'value'``, bound, never spliced), so a query reads
    them with ``getvariable('name')``. Several statements may be given; the last one's rows come back.

    Raises :class:`UserInputError` with a one-line message when there is no published database yet or
    the query fails (syntax, unknown table, attempted write).
    """
    path = home.published_db
    if not path.is_file():
        raise UserInputError(f"no published database yet at {path}; run a night first")
    if limit is not None and limit < 0:
        raise UserInputError(f"--limit {limit}: expected a number >= 0")
    try:
        con = open_file(path, "published", read_only=True)
        con.execute(sql("published/read_only_session"))
    except duckdb.Error as exc:
        raise UserInputError(f"{path}: cannot open the published database: {_first_line(exc)}") from None
    try:
        for name, value in (variables or {}).items():
            if not name.isidentifier() or not name.isascii():
                raise UserInputError(f"variable name {name!r}: expected letters, digits and _")
            con.execute(f"SET VARIABLE {name} = $value", {"value": value})  # name checked above
        cur = con.execute(sql_text)
        columns = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
    except duckdb.Error as exc:
        message = _first_line(exc)
        if "read-only" in message:
            message = f"the published database is read-only (analysts cannot change it): {message}"
        raise UserInputError(f"query failed: {message}") from None
    finally:
        con.close()
    return columns, rows


def _first_line(exc: BaseException) -> str:
    # DuckDB appends a multi-line caret diagram; the CLI prints one line.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / inf
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact, unlike a float
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, timedelta | UUID):
        return str(value)  # INTERVAL, UUID: json has no type for them
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def format_rows_json(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """Rows as a JSON array of objects keyed by column name (dates ISO, NaN -> null, unicode kept)."""
    return json.dumps(
        [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows],
        ensure_ascii=False,
        allow_nan=False,  # a NaN that slipped through is a bug here, not invalid JSON for the reader
        default=str,  # any other DuckDB type (e.g. ENUM wrappers, MAP keys) as its text
    )


def printable(text: str) -> str:
    """Data for a terminal: escape sequences and control characters removed, tabs and newlines as spaces."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text)).replace("\t", " ").replace("\n", " ")


def is_number(v: object) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _text(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, bytes):
        return v.hex()
    return printable(str(v))


def format_rows_text(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """A plain aligned table: NULL shown as NULL, numeric columns right-aligned, values printed literally
    (no markup is interpreted; escape sequences and control characters are stripped)."""
    heads = [printable(str(c)) for c in columns]
    cells = [[_text(v) for v in row] for row in rows]
    numeric = [all(is_number(r[i]) for r in rows if r[i] is not None) and any(r[i] is not None for r in rows)
               for i in range(len(heads))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(heads), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])


def format_tables_text(listing: dict) -> str:
    """``clickrec tables`` for people: each table or view with its description, then its columns."""
    lines = [f"source: {printable(listing['source'])}"]
    for t in listing["tables"]:
        lines += ["", f"{printable(t['table'])} ({t['kind']})"]
        if t["description"]:
            lines.append(f"  {printable(t['description'])}")
        width = max(len(c["name"]) for c in t["columns"])
        type_width = max(len(c["type"]) for c in t["columns"])
        lines += [f"    {printable(c['name']).ljust(width)}  {printable(c['type']).ljust(type_width)}  "
                  f"{printable(c['description'] or '(no description)')}" for c in t["columns"]]
    return "\n".join(lines)
