"""The column dictionary: one YAML document per SQL layer (``sql/<layer>/columns.yaml``), every table,
view and column with its type, description and row checks, in the manner of dbt's schema files.

It is the one home of what a column means. This module reads it (every stage may); from it come the
row checks of the validation suite (:func:`column_checks`, tasks/ingest/validate.py), and, in
tasks/publish/dictionary.py, the ``COMMENT ON`` statements of published.duckdb and ``clickrec tables``.
tests/test_sql_layers.py holds it against the live schema of real files.

A document names the database it describes (``working``: clickrec.duckdb, ``published``:
published.duckdb). A table that is a copy of another layer's table says ``copy_of: LAYER:TABLE`` and
inherits that table's description and columns, so a copied column is described once.

Check values written ``$name`` are settings of the source profile (tasks.common.profiles'
ValidationRules: ``$min_ts``, ``$event_types``, ...), resolved by whoever runs the check.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tasks.common.sqlfiles import SQL_DIR

# Identifiers come from the dictionary (a repository file), never from data; this keeps them plain.
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class DictionaryError(ValueError):
    """A columns.yaml that cannot be read or breaks the dictionary's rules (one line naming file and entry)."""


def _check_from_yaml(value: Any) -> Any:
    # `- not_null` or `- between: {min: 1}`: one check, its kind the only key.
    if isinstance(value, str):
        return {"kind": value}
    if isinstance(value, dict) and len(value) == 1:
        [(kind, arg)] = value.items()
        return {"kind": kind, "arg": arg}
    raise ValueError(f"a check is a name or a one-key mapping, got {value!r}")


class Check(BaseModel):
    """One row check of a column: ``kind`` and its argument (``$name`` = a profile setting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["not_null", "between", "accepted_values", "matches"]
    arg: Any = None

    @property
    def setting(self) -> str | None:
        """The profile setting the argument refers to (``$event_types`` -> ``event_types``), if any."""
        return self.arg[1:] if isinstance(self.arg, str) and self.arg.startswith("$") else None


class Column(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    type: str
    description: str = Field(min_length=1)
    checks: tuple[Annotated[Check, BeforeValidator(_check_from_yaml)], ...] = ()


class Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str  # schema.table
    kind: Literal["table", "view"] = "table"
    description: str = ""
    copy_of: str | None = None  # LAYER:SCHEMA.TABLE whose description and columns this one inherits
    columns: tuple[Column, ...] = ()


class Layer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    layer: str
    database: Literal["working", "published"]
    description: str = ""
    tables: tuple[Table, ...]


def layers() -> list[str]:
    """Every layer that has a column dictionary (folders of sql/ holding a columns.yaml)."""
    return sorted(p.parent.name for p in SQL_DIR.glob("*/columns.yaml"))


@cache
def _document(layer: str) -> Layer:
    path = SQL_DIR / layer / "columns.yaml"
    if not _NAME.match(layer) or not path.is_file():
        raise DictionaryError(f"no column dictionary for layer {layer!r} (expected {path})")
    try:
        doc = Layer.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as exc:
        raise DictionaryError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise DictionaryError(f"{path}: {where}: {err['msg']}") from None
    if doc.layer != layer:
        raise DictionaryError(f"{path}: says layer {doc.layer!r}, lives in sql/{layer}/")
    for t in doc.tables:
        if not all(_NAME.match(part) for part in t.name.split(".")) or t.name.count(".") != 1:
            raise DictionaryError(f"{path}: table {t.name!r}: expected schema.table in lower case")
        if bool(t.copy_of) == bool(t.columns):
            raise DictionaryError(f"{path}: {t.name}: give either columns or copy_of, not both or neither")
        for c in t.columns:
            if not _NAME.match(c.name):
                raise DictionaryError(f"{path}: {t.name}.{c.name}: expected a lower-case identifier")
    return doc


def tables(layer: str) -> tuple[Table, ...]:
    """The layer's tables and views, ``copy_of`` entries resolved to their source's description and columns."""
    return tuple(_resolve(layer, t, ()) for t in _document(layer).tables)


def _resolve(layer: str, t: Table, seen: tuple[str, ...]) -> Table:
    if not t.copy_of:
        return t
    src_layer, _, src_name = t.copy_of.partition(":")
    if f"{src_layer}:{src_name}" in seen:
        raise DictionaryError(f"sql/{layer}/columns.yaml: {t.name}: copy_of loops through {t.copy_of}")
    source = next((s for s in _document(src_layer).tables if s.name == src_name), None)
    if source is None:
        raise DictionaryError(f"sql/{layer}/columns.yaml: {t.name}: copy_of {t.copy_of} names no such table")
    resolved = _resolve(src_layer, source, (*seen, t.copy_of))
    return t.model_copy(update={"columns": resolved.columns, "copy_of": None,
                                "description": t.description or resolved.description})


def table(layer: str, name: str) -> Table:
    found = next((t for t in tables(layer) if t.name == name), None)
    if found is None:
        raise DictionaryError(f"sql/{layer}/columns.yaml documents no table {name!r}")
    return found


def column_checks(layer: str, table_name: str) -> dict[str, tuple[Check, ...]]:
    """Row checks per column of one table, e.g. ``column_checks("staging", "raw.clicks")["ts"]``."""
    return {c.name: c.checks for c in table(layer, table_name).columns if c.checks}
