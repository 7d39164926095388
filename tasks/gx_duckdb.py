"""Make Great Expectations' SQL execution engine work on DuckDB (duckdb-engine).

Why this module exists
----------------------
GX 1.24.1 opens a fresh SQLAlchemy connection per metric query (``with engine.connect()``) and
reads the rows *after* that block has closed the connection. duckdb-engine drops a cursor's
results when its connection closes, so every metric resolves to an empty result and GX reports
``success=False`` for every expectation; the real error (``MetricResolutionError: list index out
of range``) sits only in ``exception_info``. A pipeline that trusted ``success`` would quarantine
or fail on garbage, silently.

GX already knows the cure for sqlite/mssql/bigquery/databricks: keep *one* persisted connection
per execution engine (``_PERSISTED_CONNECTION_DIALECTS`` in
``great_expectations.execution_engine.sqlalchemy_execution_engine``). DuckDB needs the same
treatment. The tuple is consulted in two ways, so the entry we add must satisfy both:

* ``engine.dialect_name in _PERSISTED_CONNECTION_DIALECTS`` -> the entry must compare equal to
  the string ``"duckdb"``;
* ``connection_string.startswith(entry.value)`` -> the entry must have a ``.value``.

A ``str`` subclass with a ``value`` attribute does both. The patch is idempotent (applied once per
process however often it is called) and is verified on every call, so a GX upgrade that renames
the tuple fails loudly here instead of silently in validation.

The persisted connection is held by the execution engine until someone closes it: callers must
call :func:`release_engine` when done, or the DuckDB file stays locked for the rest of the process
(GX's connection uses its own config, so a plain ``duckdb.connect`` to the same file fails).
"""

from __future__ import annotations

from typing import Any

DIALECT = "duckdb"


class _DuckDBDialectName(str):
    """``"duckdb"`` that also carries ``.value`` like a ``GXSqlDialect`` member."""

    @property
    def value(self) -> str:
        return str(self)


def ensure_duckdb_persisted_connection() -> None:
    """Register DuckDB as a persisted-connection dialect in GX (idempotent; see module docstring)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    current = getattr(see, "_PERSISTED_CONNECTION_DIALECTS", None)
    if current is None:
        # The cure depends on a private name; if GX moves it we must know before validating.
        raise RuntimeError(
            "great_expectations.execution_engine.sqlalchemy_execution_engine has no "
            "_PERSISTED_CONNECTION_DIALECTS: the DuckDB fix in tasks/gx_duckdb.py needs updating "
            "for this GX version"
        )
    if DIALECT not in current:
        see._PERSISTED_CONNECTION_DIALECTS = (*current, _DuckDBDialectName(DIALECT))
    if DIALECT not in see._PERSISTED_CONNECTION_DIALECTS or not see._dialect_requires_persisted_connection(
        connection_string="duckdb:///:memory:"
    ):
        raise RuntimeError("could not register duckdb as a GX persisted-connection dialect")


def release_engine(execution_engine: Any) -> None:
    """Close GX's persisted connection and dispose its SQLAlchemy engine, freeing the DuckDB file.

    ``execution_engine`` is a GX ``SqlAlchemyExecutionEngine``; the attributes used are private
    to GX 1.x, hence the defensive ``getattr``.
    """
    connection = getattr(execution_engine, "_connection", None)
    if connection is not None:
        connection.close()
        execution_engine._connection = None
    engine = getattr(execution_engine, "engine", None)
    if engine is not None:
        engine.dispose()
