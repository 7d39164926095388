"""Great Expectations, set up once per process: one in-memory context; one datasource, its suites
and the checkpoint reused by every file of every run (only the datasource's file changes); Data
Docs once per run.

Why this shape (measured on the 2-core machine, GX 1.24.1): importing GX costs seconds once per
process; a file-backed context re-reads ``great_expectations.yml`` on nearly every access and
re-writes its JSON stores on every ``add_or_update``; rendering Data Docs compiles GX's Jinja
templates afresh on every build (about 3 s). Doing all of that per file made a 2M-row, 10-file
ingest spend most of its time in GX's Python. So validation runs in an ephemeral context (no file
I/O) and the run's results are written to the file-backed project, and its Data Docs built, once
per run (:func:`publish_docs`). GX's context is not thread-safe: every entry point holds ``GX_LOCK``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.common.sqlfiles import sql

GX_LOCK = threading.RLock()
DATASOURCE = "clickrec_staging"
SUITE_ROWS, SUITE_DAYS, SUITE_BATCH = "clickrec_batch_rows", "clickrec_batch_days", "clickrec_batch_table"
ASSETS = {SUITE_ROWS: "staging/gx_rows_asset", SUITE_DAYS: "staging/gx_days_asset", SUITE_BATCH: "staging/gx_batch_asset"}
# SUMMARY with 0 sample values: GX resolves each suite's counts in one aggregate query and never
# runs the LIMIT-n sample query (which, for a passing expectation, scans the whole table).
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


class GXExecutionError(RuntimeError):
    """An expectation raised inside GX (missing column, SQL error...): its result means nothing."""


@dataclass(frozen=True)
class Check:
    """One expectation of a suite: ``key`` names the check (and its flag column for row checks);
    ``rule`` / ``column`` say what it checks, as recorded in ops.validation_results."""

    key: str
    level: str
    rule: str
    column: str
    expectation: Any


@dataclass
class SuiteRun:
    """GX's results of one file, per suite name, and what :func:`publish_docs` needs later."""

    by_suite: dict[str, list[Any]]
    run_results: dict[Any, Any]


_state: dict[str, Any] = {}


def warm_up() -> None:
    """Import GX, make it work on DuckDB and create the context: the per-process fixed cost."""
    _context()


def _context() -> Any:
    with GX_LOCK:
        if "context" not in _state:
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            from tasks.ingest.gx_duckdb import ensure_duckdb_support

            ensure_duckdb_support()
            # No docs site: GX's default one is a fresh temp folder per process (and a log line on
            # stderr); the run's Data Docs are built in the project under home/gx (publish_docs).
            defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
            context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(store_backend_defaults=defaults))
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _state["context"] = context
        return _state["context"]


def _suite(context: Any, name: str, checks: Sequence[Check]) -> Any:
    """The suite ``name`` holding exactly ``checks``; rebuilt only when the checks change."""
    import great_expectations as gx

    signature = tuple((c.key, repr(c.expectation.configuration.kwargs)) for c in checks)
    cached = _state.get(("suite", name))
    if cached is not None and cached[0] == signature:
        return cached[1]
    suite = gx.ExpectationSuite(name=name)
    for check in checks:
        check.expectation.meta = {"check": check.key, "level": check.level, "rule": check.rule, "column": check.column}
        suite.add_expectation(check.expectation)
    suite = context.suites.add_or_update(suite)
    _state[("suite", name)] = (signature, suite)
    return suite


def _asset_query(suite: str) -> str:
    """The asset's SQL without its leading comment (GX wants a query that starts with SELECT)."""
    return "\n".join(line for line in sql(ASSETS[suite]).splitlines() if not line.startswith("--")).strip()


def run_suites(db_path: Path, run_name: str, suites: dict[str, list[Check]]) -> SuiteRun:
    """Run the suites over the assets of ``db_path`` (a scratch database no other connection of this
    process holds) in one checkpoint; GX's DuckDB connections are released afterwards, error or not."""
    from great_expectations.core.run_identifier import RunIdentifier

    from tasks.ingest.gx_duckdb import release_duckdb_engines

    with GX_LOCK:
        context = _context()
        try:
            datasource, checkpoint = _checkpoint(context, suites)
            # The datasource builds a new engine whenever its connection settings change, so one
            # datasource, its assets and the checkpoint serve every file: only the file differs.
            datasource.connection_string = f"duckdb:///{db_path.resolve()}"
            run = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
        finally:
            release_duckdb_engines(db_path)
    by_suite = {r.suite_name: list(r.results) for r in run.run_results.values()}
    _raise_on_gx_errors(run_name, by_suite, suites)
    return SuiteRun(by_suite=by_suite, run_results=dict(run.run_results))


def _checkpoint(context: Any, suites: dict[str, list[Check]]) -> tuple[Any, Any]:
    """The datasource and the checkpoint over ``suites``, built once per set of suites and reused.

    Building them costs GX about a third of a file's validation (measured: datasource, query
    assets, batch and validation definitions, checkpoint), so it is not paid per file. Rules that
    differ (a whole-day file's day-volume bounds) give other suites, and those are built anew."""
    import great_expectations as gx

    signature = tuple((name, tuple((c.key, repr(c.expectation.configuration.kwargs)) for c in checks))
                      for name, checks in suites.items())
    cached = _state.get("checkpoint")
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    datasource = context.data_sources.add_or_update_sql(name=DATASOURCE, connection_string="duckdb:///:memory:")
    definitions = []
    for name, checks in suites.items():
        if name in {a.name for a in datasource.assets}:
            datasource.delete_asset(name)
        asset = datasource.add_query_asset(name=name, query=_asset_query(name))
        batch = asset.add_batch_definition_whole_table("whole")
        definitions.append(context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=_suite(context, name, checks))))
    checkpoint = context.checkpoints.add_or_update(
        # Named by its suites: a checkpoint over other suites (a test's) never meets this one.
        gx.Checkpoint(name="__".join(["clickrec_batch", *suites]), validation_definitions=definitions, actions=[],
                      result_format=RESULT_FORMAT))
    _state["checkpoint"] = (signature, datasource, checkpoint)
    return datasource, checkpoint


def _exception_messages(result: Any) -> list[str]:
    """Raised exceptions inside one GX result. exception_info is either one flat dict or a dict of
    them keyed by metric id, depending on where GX caught the error."""
    info = result.exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]


def _raise_on_gx_errors(run_name: str, by_suite: dict[str, list[Any]], suites: dict[str, list[Check]]) -> None:
    """A result whose metric raised is neither a pass nor a fail: never let it through as either."""
    errors = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')}): {message}"
        for results in by_suite.values()
        for r in results
        for message in _exception_messages(r)
    ]
    if errors:
        raise GXExecutionError(f"{run_name}: Great Expectations raised while validating: " + " | ".join(errors))
    partial = sorted(name for name in suites if len(by_suite.get(name, [])) != len(suites[name]))
    if partial:
        raise GXExecutionError(f"{run_name}: GX returned no or partial results for suites {partial}")


def ordered(results: Sequence[Any], checks: Sequence[Check]) -> list[Any]:
    """GX results in the order of ``checks``, matched on the ``check`` key we put in meta."""
    by_key = {(r.expectation_config.meta or {}).get("check"): r for r in results}
    missing = [c.key for c in checks if c.key not in by_key]
    if missing:
        raise GXExecutionError(f"GX results missing for checks {missing}")
    return [by_key[c.key] for c in checks]


def publish_docs(gx_dir: Path, runs: Sequence[SuiteRun]) -> Path | None:
    """Write a run's validation results into the file-backed GX project under ``gx_dir`` and build
    their Data Docs, once for the whole run. Returns the docs' index page."""
    if not runs:
        return None
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    with GX_LOCK:
        gx_dir.mkdir(parents=True, exist_ok=True)
        project = _state.get(("project", str(gx_dir)))
        if project is None:
            project = gx.get_context(mode="file", project_root_dir=str(gx_dir))
            _state[("project", str(gx_dir))] = project
        identifiers: list[Any] = []
        for suite_run in runs:
            for key, result in suite_run.run_results.items():
                suite = _state[("suite", result.suite_name)][1]
                if ("docs-suite", str(gx_dir), result.suite_name) not in _state:
                    project.suites.add_or_update(ExpectationSuite(**suite.to_json_dict()))
                    _state[("docs-suite", str(gx_dir), result.suite_name)] = True
                project.validation_results_store.set(key, result)
                identifiers.append(key)
        project.build_data_docs(resource_identifiers=identifiers)
        index = next(iter(project.get_docs_sites_urls()), {}).get("site_url")
    return Path(index.removeprefix("file://")) if index else None
