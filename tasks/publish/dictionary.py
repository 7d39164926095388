"""The column dictionary's published side: ``COMMENT ON`` for every table, view and column of
published.duckdb (:func:`comment_statements`, applied when the file is built), the listing of
``clickrec tables`` (:func:`published_tables`) and the README's tables (:func:`markdown`). The
documents and their reader are in tasks/common/columns.py.
"""

from __future__ import annotations

from tasks.common.columns import (  # noqa: F401  (re-exported: one import for the dictionary's users)
    Check,
    Column,
    DictionaryError,
    Layer,
    Table,
    column_checks,
    layers,
    table,
    tables,
)
from tasks.common.config import Home, NothingToDoError
from tasks.common.sqlfiles import SQL_DIR, sql


def _literal(text: str) -> str:
    # DuckDB's COMMENT ON takes no bound parameter (a parser error, measured on 2.0.1), so the text is a
    # quoted literal. It comes from the repository's dictionary, never from data.
    return "'" + " ".join(text.split()).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


def comment_statements(layer: str) -> list[str]:
    """``COMMENT ON`` every table / view and every column the layer documents."""
    out: list[str] = []
    for t in tables(layer):
        what = "VIEW" if t.kind == "view" else "TABLE"
        if t.description:
            out.append(f"COMMENT ON {what} {_ident(t.name)} IS {_literal(t.description)}")
        out += [f"COMMENT ON COLUMN {_ident(t.name)}.{_ident(c.name)} IS {_literal(c.description)}"
                for c in t.columns]
    return out


def live_catalog(con) -> list[dict]:
    """Tables and views of an open database, with their columns, types and comments (one row a column)."""
    cur = con.execute(sql("published/catalog"))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _grouped(rows: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(r["table_name"], {"table": r["table_name"], "kind": r["kind"],
                                                  "description": r["table_description"], "columns": []})
        entry["columns"].append({"name": r["column_name"], "type": r["data_type"],
                                 "description": r["column_description"]})
    return list(out.values())


def published_tables(home: Home) -> dict:
    """What ``clickrec tables`` prints: the live published file's tables, views and columns with their
    comments; before the first night, the dictionary's (``source`` says which)."""
    from tasks.common.warehouse import open_file

    path = home.published_db
    if path.is_file():
        con = open_file(path, "published", read_only=True)
        try:
            return {"source": str(path), "tables": _grouped(live_catalog(con))}
        finally:
            con.close()
    documented = [{"table": t.name, "kind": t.kind, "description": t.description,
                   "columns": [{"name": c.name, "type": c.type, "description": c.description} for c in t.columns]}
                  for t in tables("published")]
    if not documented:
        raise NothingToDoError("the published column dictionary is empty")
    return {"source": str(SQL_DIR / "published" / "columns.yaml") + " (no published database yet)",
            "tables": documented}



def markdown(layer: str) -> str:
    """The layer's tables as README markdown (one table per table or view): the README's output tables
    are generated from the dictionary, not written twice."""
    out: list[str] = []
    for t in tables(layer):
        out += [f"**`{t.name}`** ({t.kind}): {' '.join(t.description.split())}", "",
                "| column | type | description |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {' '.join(c.description.split()).replace('|', '/')} |" for c in t.columns]
        out.append("")
    return "\n".join(out)
