"""Analysts' SQL on the published database (``clickrec query``), never on the working one.

The connection is read-only, so any write (DROP, INSERT, CREATE ...) fails inside DuckDB, and it
shares the file with other analysts; it never blocks the pipeline, which replaces the file by rename
(tasks/publish/published.py). File-system access is switched off too: the command answers questions about the
published file, it is not a way to write files (COPY TO) or attach other databases. For the Parquet
lake, use duckdb / polars on ``lake/recs`` directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb

from tasks.common.config import Home, UserInputError

_CONFIG = {"autoinstall_known_extensions": False, "enable_external_access": False}


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
        con = duckdb.connect(str(path), read_only=True, config=_CONFIG)
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
    )


def format_rows_text(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """A plain aligned table for the terminal (NULL shown as NULL)."""
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
