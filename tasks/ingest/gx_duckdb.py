"""Make Great Expectations' SQL execution engine work on DuckDB (duckdb-engine), and let go of it.

Why this module exists (GX 1.24.1, duckdb-engine 0.17.0, SQLAlchemy 2.1)
-------------------------------------------------------------------------
1. **Silent failure as shipped.** GX opens a fresh SQLAlchemy connection per metric query
   (``with engine.connect()``) and reads the rows *after* that block has closed the connection.
   duckdb-engine drops a cursor's results when its connection closes, so every metric resolves to
   nothing and GX reports ``success=False`` for every expectation; the real error
   (``MetricResolutionError: list index out of range``) sits only in ``exception_info``.
   GX already has the cure for sqlite/mssql/bigquery/databricks: one *persisted* connection per
   execution engine (``_PERSISTED_CONNECTION_DIALECTS`` in
   ``great_expectations.execution_engine.sqlalchemy_execution_engine``). We add DuckDB. The tuple is
   consulted two ways, so our entry must satisfy both: ``engine.dialect_name in <tuple>`` (compare
   equal to ``"duckdb"``) and ``connection_string.startswith(entry.value)`` (have ``.value``). A
   ``str`` subclass with a ``value`` property does both.
2. **Regex unsupported.** GX picks the SQL regex operator from ``execution_engine.dialect_module``,
   which it only sets for dialects it knows; for DuckDB it stays ``None`` and every
   ``expect_column_values_to_match_regex`` raises "Regex is not supported for dialect duckdb".
   duckdb-engine's dialect *is* a PostgreSQL dialect subclass and DuckDB implements PostgreSQL's
   ``~`` / ``!~`` (regex search, RE2 syntax), so we give DuckDB engines the PostgreSQL dialect
   module, as GX does for PostgreSQL itself.
3. **The file stays locked.** The persisted connection (and the datasource's own test-connection
   engine) live until garbage collection; GX's connection carries its own DuckDB config
   (custom_user_agent), so while it lives a plain ``duckdb.connect`` to the same file in the same
   process fails. :func:`release_duckdb_engines` closes and disposes every DuckDB engine GX made.

All patches are applied once per process (idempotent) by :func:`ensure_duckdb_support` and checked
on every call, so a GX upgrade that renames these internals fails loudly here, not silently later.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

DIALECT = "duckdb"

# Execution engines and SQLAlchemy engines GX created for DuckDB, so they can be released. Weak:
# we only track them, ownership stays with GX.
_EXECUTION_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
_SA_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
_PATCHED_INIT = "_clickrec_duckdb_init"


class _DuckDBDialectName(str):
    """``"duckdb"`` that also carries ``.value`` like a ``GXSqlDialect`` member."""

    @property
    def value(self) -> str:
        return str(self)


def ensure_duckdb_support() -> None:
    """Apply the three DuckDB fixes described in the module docstring (idempotent)."""
    import sqlalchemy as sa
    import sqlalchemy.dialects.postgresql as postgresql
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    current = getattr(see, "_PERSISTED_CONNECTION_DIALECTS", None)
    if current is None:
        raise RuntimeError(
            "great_expectations.execution_engine.sqlalchemy_execution_engine has no "
            "_PERSISTED_CONNECTION_DIALECTS: tasks/ingest/gx_duckdb.py needs updating for this GX version"
        )
    if DIALECT not in current:
        see._PERSISTED_CONNECTION_DIALECTS = (*current, _DuckDBDialectName(DIALECT))
    if not see._dialect_requires_persisted_connection(connection_string="duckdb:///:memory:"):
        raise RuntimeError("could not register duckdb as a GX persisted-connection dialect")

    engine_cls = see.SqlAlchemyExecutionEngine
    if not getattr(engine_cls.__init__, _PATCHED_INIT, False):
        original_init = engine_cls.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            if self.dialect_name == DIALECT:
                if self.dialect_module is None:
                    self.dialect_module = postgresql  # fix 2: PostgreSQL regex operators
                _EXECUTION_ENGINES.add(self)

        setattr(__init__, _PATCHED_INIT, True)
        engine_cls.__init__ = __init__

    if not sa.event.contains(sa.engine.Engine, "engine_connect", _track_engine):
        # Class-level listener: also sees the datasource's test-connection engine.
        sa.event.listen(sa.engine.Engine, "engine_connect", _track_engine)


def _track_engine(connection: Any) -> None:
    engine = connection.engine
    if engine.dialect.name == DIALECT:
        _SA_ENGINES.add(engine)


def _same_file(engine: Any, db_path: Path | None) -> bool:
    if db_path is None:
        return True
    database = getattr(getattr(engine, "url", None), "database", None)
    return database is not None and Path(database).resolve() == db_path.resolve()


def release_duckdb_engines(db_path: Path | None = None) -> int:
    """Close GX's persisted DuckDB connections and dispose the DuckDB engines GX opened.

    Only engines on ``db_path`` when given, so a validation running in another thread on another
    file keeps its connection. Returns how many SQLAlchemy engines were disposed. Safe to call
    repeatedly; an engine used again afterwards simply reconnects (SQLAlchemy recreates the pool).
    """
    engines = {e for e in _SA_ENGINES if _same_file(e, db_path)}
    for execution_engine in list(_EXECUTION_ENGINES):
        engine = getattr(execution_engine, "engine", None)
        if not _same_file(engine, db_path):
            continue
        connection = getattr(execution_engine, "_connection", None)
        if connection is not None:
            connection.close()
            execution_engine._connection = None
        if hasattr(engine, "dispose"):  # GX may hold a Connection here instead of an Engine
            engines.add(engine)
        _EXECUTION_ENGINES.discard(execution_engine)
    for engine in engines:
        engine.dispose()
        _SA_ENGINES.discard(engine)
    return len(engines)
