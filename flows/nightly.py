"""The nightly flow: ingest D -> validate -> features -> train -> P4 -> gate -> publish -> report.

Orchestration only. Training runs in-process (the embedded default) or, when
``CLICKREC_TRAIN_DEPLOYMENT`` names a deployment (``train-night/gpu`` on the ``gpu`` pool of
prefect.yaml), through ``run_deployment``: the bundle folder is the hand-off, so the worker needs
the home folder on shared storage. Warehouse writes happen here only, under the
``clickrec-warehouse`` concurrency limit (one writer at a time, across processes and machines).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import files_for_day, ingest_day_task
from flows.train import train_night
from tasks.common.config import Home, parse_day
from tasks.common.faults import crash_point
from tasks.features.bundle import NightConfig, bundle_meta, prepare_night
from tasks.ingest.files import IngestError, list_input_files, publish_committed

WRITER_LIMIT = "clickrec-warehouse"


def default_run_date(tz: str | None = None) -> date:
    """Yesterday in the configured timezone (``CLICKREC_TIMEZONE``, default UTC)."""
    zone = ZoneInfo(tz or os.environ.get("CLICKREC_TIMEZONE", "UTC"))
    return datetime.now(zone).date() - timedelta(days=1)


@contextlib.contextmanager
def warehouse_writer():
    """Prefect global concurrency limit when a server has it configured; a no-op otherwise."""
    from prefect.concurrency.sync import concurrency

    try:
        ctx = concurrency(WRITER_LIMIT, occupy=1, strict=False)
    except Exception:  # noqa: BLE001 - no server-side limit configured: the file lock still guards
        ctx = contextlib.nullcontext()
    with ctx:
        yield


@task(name="prepare-night", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def prepare_night_task(home: Home, run_date: date, cfg: NightConfig) -> str:
    with warehouse_writer():
        return str(prepare_night(home, run_date, cfg))


@task(name="record-gate-publish", cache_policy=NO_CACHE)
def record_gate_publish_task(home: Home, run_id: str, run_date: date, bundle: str, results: list[dict],
                             cfg: NightConfig) -> list[dict]:
    from tasks.common.warehouse import connect
    from tasks.publish.published import build_published, promote, write_candidates
    from tasks.publish.record import gate, load_candidates, record_result, set_status

    meta = bundle_meta(Path(bundle))
    decisions = []
    with warehouse_writer():
        con = connect(home)
        try:
            best_ae = _best_autoencoder(results)
            for r in results:
                record_result(con, run_id, run_date, meta, r)
                for kind, path in r["outputs"].items():
                    c = load_candidates(path)
                    write_candidates(con, kind, run_date, r["model"], r["version"], c["entity_ids"], c["item_idx"], c["scores"])
                d = gate(con, run_date, r, cfg.gate_tolerance)
                if r["family"] == "autoencoder" and r["model"] != best_ae:
                    set_status(con, run_date, d, "not-selected")
                    decisions.append({"model": r["model"], "version": r["version"], "decision": "not selected",
                                      "reason": f"{best_ae} validated better"})
                    continue
                if d.publish:
                    promote(con, run_date, r["model"], r["version"])
                set_status(con, run_date, d, "published" if d.publish else "rejected")
                decisions.append({"model": r["model"], "version": r["version"],
                                  "decision": "published" if d.publish else "rejected", "reason": d.reason})
        finally:
            con.close()
        crash_point("publish-after-promote")
        build_published(home, retention_days=cfg.retention_days)
    return decisions


def _best_autoencoder(results: list[dict]) -> str | None:
    """The autoencoder that did best on the validation day (its own valid metric, else similarity)."""
    scored = []
    for r in results:
        if r["family"] != "autoencoder":
            continue
        vm = r["fit"].get("valid_metrics", {})
        from tasks.train.fit import MIN_VALID_PREDICTIONS

        if vm.get("n_predictions", 0) >= MIN_VALID_PREDICTIONS and "NDCG@10" in vm:
            score = vm["NDCG@10"]  # top-N on the validation day
        else:
            score = vm.get("sim_HR@20", -1.0)  # no users to validate on: next-item via similarity
        scored.append((score, r["model"]))
    return max(scored)[1] if scored else None


@flow(name="nightly", log_prints=False)
def nightly(
    run_date: str | None = None,
    source: str = "synthetic",
    path: str = "landing",
    home: str | None = None,
    config: str | None = None,
    skip_ingest: bool = False,
    only: list[str] | None = None,
    warm_start: bool = False,
    strict: bool = False,
) -> dict:
    """One night. ``run_date`` defaults to yesterday in ``CLICKREC_TIMEZONE``; ``warm_start`` overrides
    the config's and starts each model from its last published checkpoint; ``strict``: a guard rail
    refuses the night's landing file instead of flagging it."""
    h = Home.resolve(home).ensure()
    day = parse_day(run_date) if run_date else default_run_date()
    cfg = NightConfig.for_profile(source, Path(config) if config else None)
    if warm_start:
        cfg = replace(cfg, warm_start=True)
    from tasks.common.locks import night_lock
    from tasks.ingest.files import new_run_id

    with night_lock(h, day):
        return _night(h, day, cfg, source, path, skip_ingest, only, new_run_id(f"nightly-{day}"), strict)


def _night(h: Home, day: date, cfg: NightConfig, source: str, path: str, skip_ingest: bool,
           only: list[str] | None, run_id: str, strict: bool = False) -> dict:
    stages: dict[str, float] = {}
    t = time.perf_counter()
    if not skip_ingest:
        files = files_for_day(list_input_files(Path(path)), day)
        if not files:
            raise IngestError(f"{path}: no landing file for {day}")
        ingest_day_task(h, source, files, day, strict)  # its commit first finishes any half-published ingest
    else:
        publish_committed(h)  # a crashed ingest is repaired before the night reads the warehouse
    stages["ingest+validate"] = time.perf_counter() - t

    t = time.perf_counter()
    bundle = prepare_night_task(h, day, cfg)
    stages["features"] = time.perf_counter() - t

    t = time.perf_counter()
    deployment = os.environ.get("CLICKREC_TRAIN_DEPLOYMENT")
    if deployment:
        from prefect.deployments import run_deployment

        run_deployment(deployment, parameters={"bundle": bundle, "models_dir": str(h.models), "only": only},
                       timeout=None)
        results = json.loads((Path(bundle) / "results.json").read_text())
    else:
        results = train_night(bundle=bundle, models_dir=str(h.models), only=only)
    stages["train+P4"] = time.perf_counter() - t

    t = time.perf_counter()
    decisions = record_gate_publish_task(h, run_id, day, bundle, results, cfg)
    stages["gate+publish"] = time.perf_counter() - t

    t = time.perf_counter()
    notes = sorted({n for r in results for n in r.get("notes", [])})
    report = _report(h, day, run_id, decisions, stages, notes)
    stages["report"] = time.perf_counter() - t
    return {"run_id": run_id, "run_date": str(day), "decisions": decisions, "stage_seconds": stages,
            "report": str(report) if report else None, "notes": notes,
            "models": [{k: r[k] for k in ("model", "version", "train_seconds", "metrics")} for r in results]}


def _report(home: Home, day: date, run_id: str, decisions: list[dict], stages: dict, notes: list[str]):
    from tasks.report.html import build_report, publish_report_artifacts

    path = build_report(home, day, run_id=run_id, gate=decisions, stage_seconds=stages, notes=notes)
    publish_report_artifacts(home, day, gate=decisions, stage_seconds=stages, notes=notes)
    return path


@flow(name="backfill", log_prints=False)
def backfill(
    start: str,
    end: str,
    source: str = "synthetic",
    path: str = "landing",
    home: str | None = None,
    retrain: str = "last",
    config: str | None = None,
    warm_start: bool = False,
    strict: bool = False,
) -> dict:
    """Ingest + validate every day of [start, end] (fanned out), then train once at the end
    (``retrain="last"``) or re-run each night's train/evaluate/publish in date order (``"daily"``)."""
    from flows.ingest import backfill_ingest_flow, task_runner_for_fanout

    if retrain not in ("last", "daily", "none"):
        raise IngestError(f"--retrain {retrain!r}: expected last, daily or none")
    d0, d1 = parse_day(start, "--start"), parse_day(end, "--end")
    ingested = backfill_ingest_flow.with_options(task_runner=task_runner_for_fanout())(
        source=source, path=path, start=start, end=end, home=home, strict=strict
    )
    nights: list[dict] = []
    if retrain == "last":
        nights.append(nightly(run_date=str(d1), source=source, path=path, home=home, config=config, skip_ingest=True,
                              warm_start=warm_start))
    elif retrain == "daily":
        day = d0 + timedelta(days=2)  # a night needs a training day and a validation day before it
        while day <= d1:
            nights.append(nightly(run_date=str(day), source=source, path=path, home=home, config=config,
                                  skip_ingest=True, warm_start=warm_start))
            day += timedelta(days=1)
    return {"ingested": ingested, "nights": nights}
