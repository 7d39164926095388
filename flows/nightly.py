"""The nightly flow and the backfill: the night's table of contents.

``nightly(D)``: land D's files (ingest + validate) -> features and the night's bundle -> train every
model (P4 on D) -> record, gate, promote and publish -> report -> retention. Each step is one task
call; the work is in ``tasks/<stage>/`` (the decisions in ``tasks.publish.decision``).

Training runs in-process (the embedded default) or, when ``CLICKREC_TRAIN_DEPLOYMENT`` names a
deployment (``train-night/gpu`` on the ``gpu`` pool of prefect.yaml), through ``run_deployment``: the
bundle folder is the hand-off, so the worker needs the home folder on shared storage. Warehouse
writes happen in this process only, under the ``clickrec-warehouse`` concurrency limit.

A run without ``run_date`` processes the night before its *scheduled* start, in the timezone of its
deployment's schedule (``tasks.common.run_date``). A failed or crashed run is recorded in
``ops.flow_failures`` (``clickrec status``, the night's report).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun

from flows.ingest import files_for_day, ingest_day_task
from flows.train import train_night
from tasks.common.config import Home, NothingToDoError
from tasks.common.failures import on_flow_failure
from tasks.common.locks import night_lock
from tasks.common.run_date import Retrain, retrain_days, scheduled_night
from tasks.common.settings import get_settings
from tasks.features.bundle import NightConfig, prepare_night
from tasks.ingest.commit import publish_committed
from tasks.ingest.landing import list_input_files, new_run_id
from tasks.publish.outcome import StageClock, night_notes, night_outcome
from tasks.publish.record import record_night
from tasks.publish.retention import RetentionPolicy, prefect_storage_path, prune
from tasks.report.html import build_report_task

WRITER_LIMIT = "clickrec-warehouse"
HOUR = 3600
# Timeouts: a run past them is stuck, not slow. A step may first wait for the warehouse (the lock wait,
# 6 h by default); an epoch of GRU4Rec at rsc15's full size takes about 28 minutes on CPU.
NIGHT_TIMEOUT_SECONDS = 24 * HOUR
INGEST_TIMEOUT_SECONDS = 8 * HOUR
FEATURES_TIMEOUT_SECONDS = 8 * HOUR
TRAIN_TIMEOUT_SECONDS = 14 * HOUR
PUBLISH_TIMEOUT_SECONDS = 8 * HOUR
HOUSEKEEPING_TIMEOUT_SECONDS = 1 * HOUR
BACKFILL_TIMEOUT_SECONDS = 7 * 24 * HOUR


class RemoteRunError(RuntimeError):
    """A flow run started through ``run_deployment`` did not complete."""


@contextlib.contextmanager
def warehouse_writer() -> Iterator[None]:
    """Prefect global concurrency limit when a server has it configured; a no-op otherwise."""
    from prefect.concurrency.sync import concurrency

    try:
        ctx = concurrency(WRITER_LIMIT, occupy=1, strict=False)
    except Exception:  # noqa: BLE001 - no server-side limit configured: the file lock still guards
        ctx = contextlib.nullcontext()
    with ctx:
        yield


# ------------------------------------------------------------------------------------------ tasks


@task(name="landing-files", task_run_name="landing-files-{day}", cache_policy=NO_CACHE,
      timeout_seconds=HOUSEKEEPING_TIMEOUT_SECONDS)
def landing_files_task(path: str, day: date) -> list[Path]:
    """The landing files that serve night ``day`` (exit 5 when there is none)."""
    files = files_for_day(list_input_files(Path(path)), day)
    if not files:
        raise NothingToDoError(f"{path}: no landing file for {day}")
    return files


@task(name="finish-committed-ingests", task_run_name="finish-committed-ingests", cache_policy=NO_CACHE,
      timeout_seconds=INGEST_TIMEOUT_SECONDS)
def finish_committed_task(home: Home) -> list[str]:
    """A crashed ingest is finished before the night reads the warehouse (when the night ingests nothing)."""
    return publish_committed(home)


@task(name="prepare-night", task_run_name="prepare-night-{run_date}", cache_policy=NO_CACHE, retries=1,
      retry_delay_seconds=5, timeout_seconds=FEATURES_TIMEOUT_SECONDS)
def prepare_night_task(home: Home, run_date: date, cfg: NightConfig) -> str:
    with warehouse_writer():
        return str(prepare_night(home, run_date, cfg))


@task(name="record-gate-publish", task_run_name="record-gate-publish-{run_date}", cache_policy=NO_CACHE,
      timeout_seconds=PUBLISH_TIMEOUT_SECONDS)
def record_gate_publish_task(home: Home, run_id: str, run_date: date, bundle: str, results: list[dict],
                             cfg: NightConfig) -> list[dict]:
    with warehouse_writer():
        return record_night(home, run_id, run_date, bundle, results, cfg.gate_tolerance, cfg.retention_days)


@task(name="retention", task_run_name="retention-{run_date}", cache_policy=NO_CACHE,
      timeout_seconds=HOUSEKEEPING_TIMEOUT_SECONDS)
def retention_task(home: Home, run_date: date, cfg: NightConfig) -> dict[str, Any]:
    """Prune night bundles, checkpoints (never a champion's), GX results and Prefect's result storage."""
    policy = RetentionPolicy(nights=cfg.retention_days, gx_days=cfg.retention_days)
    return prune(home, policy, prefect_storage=prefect_storage_path()).to_dict()


# Tasks of other stages, with this flow's run names and timeouts.
ingest_night_task = ingest_day_task.with_options(task_run_name="ingest-{day}", timeout_seconds=INGEST_TIMEOUT_SECONDS)
report_task = build_report_task.with_options(task_run_name="report-{run_date}",
                                             timeout_seconds=HOUSEKEEPING_TIMEOUT_SECONDS)


def require_completed(run: FlowRun | None, what: str) -> FlowRun:
    """``run_deployment``'s flow run, if it completed; otherwise one line naming the run and its state."""
    state = run.state if run is not None else None
    if run is None or state is None:
        raise RemoteRunError(f"{what}: no flow run came back")
    if not state.is_final():
        raise RemoteRunError(f"{what}: flow run {run.name} still {state.name} after {TRAIN_TIMEOUT_SECONDS} s")
    if not state.is_completed():
        raise RemoteRunError(f"{what}: flow run {run.name} ended {state.name}: {state.message or 'no message'}")
    return run


def train(home: Home, bundle: str, only: list[str] | None) -> list[dict]:
    """Every model of the night, in-process or through the training deployment (its results from the bundle)."""
    deployment = get_settings().train_deployment
    if not deployment:
        return train_night(bundle=bundle, models_dir=str(home.models), only=only)
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, parameters={"bundle": bundle, "models_dir": str(home.models), "only": only},
                         timeout=TRAIN_TIMEOUT_SECONDS)
    require_completed(run, f"training deployment {deployment}")
    return json.loads((Path(bundle) / "results.json").read_text())


# ------------------------------------------------------------------------------------------ flows


def _night_run_name() -> str:
    from prefect.runtime import flow_run

    day = flow_run.parameters.get("run_date") or scheduled_night()
    return f"nightly-{day}"


@flow(name="nightly", flow_run_name=_night_run_name, timeout_seconds=NIGHT_TIMEOUT_SECONDS,
      on_failure=[on_flow_failure], on_crashed=[on_flow_failure], log_prints=False)
def nightly(
    run_date: date | None = None,
    source: str = "synthetic",
    path: str = "landing",
    home: str | None = None,
    config: str | None = None,
    skip_ingest: bool = False,
    only: list[str] | None = None,
    warm_start: bool = False,
    strict: bool = False,
) -> dict:
    """One night: ingest D, validate, features, train, P4 on D, gate, publish, report, retention.

    Args:
        run_date: The night D (YYYY-MM-DD). Empty: the night before the run's scheduled start, in the
            timezone of the deployment's schedule.
        source: Source profile: a name under profiles/ (synthetic, yoochoose, sessionrec, movielens) or a .toml path.
        path: Landing folder (or file) holding D's click log, relative to the working directory or absolute.
        home: Home folder (default CLICKREC_HOME, else ./warehouse).
        config: A night TOML ([night], [night.models.NAME]) applied over the profile's settings.
        skip_ingest: Do not ingest D (a backfill ingested it already).
        only: Train only these model labels (default: every model of the night).
        warm_start: Start each model from its last published checkpoint.
        strict: A guard rail refuses D's landing file instead of flagging it.
    """
    h = Home.resolve(home).ensure()
    day = run_date or scheduled_night()
    cfg = NightConfig.for_profile(source, Path(config) if config else None, home=h)
    if warm_start:
        cfg = cfg.updated(warm_start=True)
    clock = StageClock()
    with night_lock(h, day):
        run_id = new_run_id(f"nightly-{day}")
        with clock.stage("ingest+validate"):
            if skip_ingest:
                finish_committed_task(h)
            else:  # its commit first finishes any half-published ingest
                ingest_night_task(h, source, landing_files_task(path, day), day, strict)
        with clock.stage("features"):
            bundle = prepare_night_task(h, day, cfg)
        with clock.stage("train+P4"):
            results = train(h, bundle, only)
        with clock.stage("gate+publish"):
            decisions = record_gate_publish_task(h, run_id, day, bundle, results, cfg)
        with clock.stage("report"):
            report = report_task(h, day, run_id=run_id, gate=decisions, stage_seconds=clock.seconds,
                                       notes=night_notes(results))
        retention = retention_task(h, day, cfg)
    return night_outcome(run_id, day, results, decisions, clock.seconds, report, retention)


@flow(name="backfill", flow_run_name="backfill-{start}-{end}", timeout_seconds=BACKFILL_TIMEOUT_SECONDS,
      on_failure=[on_flow_failure], on_crashed=[on_flow_failure], log_prints=False)
def backfill(
    start: date,
    end: date,
    source: str = "synthetic",
    path: str = "landing",
    home: str | None = None,
    retrain: Retrain = "last",
    config: str | None = None,
    only: list[str] | None = None,
    warm_start: bool = False,
    strict: bool = False,
) -> dict:
    """Ingest + validate every day of [start, end] (fanned out), then train.

    Args:
        start: First day to ingest (YYYY-MM-DD).
        end: Last day to ingest (YYYY-MM-DD).
        source: Source profile: a name under profiles/ or a .toml path.
        path: Landing folder holding the days' click logs.
        home: Home folder (default CLICKREC_HOME, else ./warehouse).
        retrain: last: train once, for the night of `end`; daily: every night that has a training and a
            validation day before it, in date order; none: ingest only.
        config: A night TOML ([night], [night.models.NAME]) applied over the profile's settings.
        only: Train only these model labels (default: every model of the night).
        warm_start: Start each model from its last published checkpoint.
        strict: A guard rail refuses a day's landing file instead of flagging it.
    """
    from flows.ingest import backfill_ingest_flow, task_runner_for_fanout

    ingested = backfill_ingest_flow.with_options(task_runner=task_runner_for_fanout())(
        source=source, path=path, start=str(start), end=str(end), home=home, strict=strict
    )
    nights = [nightly(run_date=day, source=source, path=path, home=home, config=config, skip_ingest=True,
                      only=only, warm_start=warm_start) for day in retrain_days(start, end, retrain)]
    return {"ingested": ingested, "nights": nights}
