"""Failed flow runs, recorded in ``ops.flow_failures`` by the flows' on-failure hook.

A scheduled night that fails at 03:00 is otherwise visible only in the Prefect UI; recorded here, it
shows in ``clickrec status`` and in the night's report next to the data it concerns.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import duckdb

from tasks.common.config import Home, parse_day
from tasks.common.sqlfiles import sql

# The hook must not hang a failed run: if another process holds the warehouse this long, the failure
# stays in Prefect's own records only (and the hook says so in the run's log).
HOOK_LOCK_WAIT_SECONDS = 30.0

log = logging.getLogger("clickrec.failures")


def first_line(error: BaseException | str | None) -> str:
    """``Kind: message``, its first line: what an operator reads first."""
    if error is None:
        return "(no error message)"
    if isinstance(error, BaseException):
        text = str(error).strip().splitlines()
        return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no error message)"


def record_failure(home: Home, *, flow_run_id: str, flow: str, run_name: str | None, run_date: date | None,
                   state: str, error: str, wait_seconds: float = HOOK_LOCK_WAIT_SECONDS) -> None:
    """One row in ``ops.flow_failures``."""
    from tasks.common.warehouse import connect

    con = connect(home.ensure(), wait_seconds=wait_seconds)
    try:
        con.execute(sql("ops/record_failure"), {"flow_run_id": flow_run_id, "flow": flow, "run_name": run_name,
                                                "run_date": run_date, "state": state, "error": error})
    finally:
        con.close()


def _night_of(parameters: dict[str, Any]) -> date | None:
    value = parameters.get("run_date")
    if value is None:
        return None
    try:
        return parse_day(value if isinstance(value, date) else str(value))
    except ValueError:
        return None


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` / ``on_crashed`` hook: record the failed run in the home's ``ops``.

    Never raises (a hook's error would only hide the run's own), and never waits long for the warehouse."""
    try:
        parameters = dict(flow_run.parameters or {})
        error = state.result(raise_on_failure=False) if state.is_failed() else state.message
        record_failure(
            Home.resolve(parameters.get("home")), flow_run_id=str(flow_run.id), flow=flow.name,
            run_name=flow_run.name, run_date=_night_of(parameters), state=str(state.name or state.type.value),
            error=first_line(error if isinstance(error, BaseException) else state.message),
        )
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("could not record the failed run %s in ops.flow_failures: %s", flow_run.name, exc)


def recent_failures(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[dict[str, Any]]:
    """The last failed flow runs, newest first (none on a warehouse no read-write open has touched since
    the table was added: the schema is applied on read-write opens only)."""
    try:
        cur = con.execute(sql("ops/status_failures"), {"limit": limit})
    except duckdb.CatalogException:
        return []
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def night_failures(con: duckdb.DuckDBPyConnection, run_date: date) -> list[dict[str, Any]]:
    """The failed runs of night ``run_date`` (for the night's report), oldest first."""
    try:
        cur = con.execute(sql("ops/night_failures"), {"run_date": run_date})
    except duckdb.CatalogException:  # a warehouse older than the table, opened read-only
        return []
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
