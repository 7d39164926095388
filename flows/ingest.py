"""Prefect flows for getting data in: one ingest run, and a backfill over a date range.

Orchestration only: which files, in which order, on which task runner. The work is in
``tasks.ingest`` (``tasks.ingest.run.ingest`` is the one stage -> commit -> clean-up sequence). Files
of a run are staged concurrently (each in its own scratch database), then validated together in one
GX run; the commit that makes them visible runs once, holding the warehouse's writer slot.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.common.config import Home, parse_day
from tasks.common.profiles import load_profile
from tasks.common.settings import get_settings
from tasks.ingest.commit import commit_run
from tasks.ingest.errors import IngestError
from tasks.ingest.landing import list_input_files, new_run_id
from tasks.ingest.run import StageJob, ingest, stage_job
from tasks.ingest.stage import FileReport, cleanup_scratch
from tasks.ingest.validate import validate_run_task

_DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _is_transient(task, task_run, state) -> bool:
    """Retry I/O hiccups, never bad input (retrying a malformed file cannot help)."""
    try:
        state.result()
    except IngestError:
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient I/O
        return True
    return False


stage_file_task = task(
    stage_job, name="stage-file", retries=2, retry_delay_seconds=2,
    retry_condition_fn=_is_transient, cache_policy=NO_CACHE,
)
commit_run_task = task(commit_run, name="commit-run", retries=2, retry_delay_seconds=2,
                       retry_condition_fn=_is_transient, cache_policy=NO_CACHE)


def files_for_day(files: list[Path], day: date) -> list[Path]:
    """Files named for a day (e.g. ``clicks-2014-04-07.dat``) serve that day only; others serve every day."""
    out = []
    for f in files:
        m = _DAY_IN_NAME.search(f.name)
        if m is None or m.group(1) == day.isoformat():
            out.append(f)
    return out


def task_runner_for_fanout():
    """Threads by default; a Dask cluster when ``CLICKREC_DASK_ADDRESS`` names a scheduler."""
    settings = get_settings()
    address = settings.dask_address
    if address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=address)
    return ThreadPoolTaskRunner(max_workers=settings.workers)


def stage_concurrently(jobs: list[StageJob]) -> list[FileReport]:
    """Stage a run's files as concurrent Prefect tasks (each retried on transient I/O); a failed
    file leaves no sibling's scratch files behind."""
    futures = [stage_file_task.submit(job) for job in jobs]
    try:
        return [fut.result() for fut in futures]
    except BaseException:
        for fut in futures:
            fut.wait()
            if fut.state.is_completed():
                cleanup_scratch([fut.result()])
        raise


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def ingest_flow(source: str, path: str, day: str | None = None, home: str | None = None, strict: bool = False,
                allow_outside_links: bool = False) -> dict:
    """Ingest one landing file or folder; with ``day`` only that day is taken, and replaced whole.

    ``strict``: a guard rail (duplicate / filtered / null-key share) refuses the file instead of
    flagging it. ``allow_outside_links``: accept symlinks that lead outside the landing folder."""
    h = Home.resolve(home).ensure()
    d = parse_day(day) if day else None
    files = list_input_files(Path(path))
    if d is not None:
        files = files_for_day(files, d)
    return ingest(h, load_profile(source), files, day=d, run_id=new_run_id("ingest"), strict=strict,
                  allow_outside_links=allow_outside_links, stage_all=stage_concurrently,
                  validate=validate_run_task, commit=commit_run_task).to_dict()


def run_ingest_command(source: str, path: str, home: str) -> dict:
    """What ``clickrec ingest --source S PATH --home H`` runs (the flow, its task runner and
    retries): the benchmark's pipeline side, so it measures the command a team runs."""
    return ingest_flow(source=source, path=path, home=home)


@task(name="ingest-day", cache_policy=NO_CACHE)
def ingest_day_task(home: Home, source: str, files: list[Path], day: date | tuple[date, date],
                    strict: bool = False) -> dict:
    """One day (or one range) of a backfill: stage its files, then commit (serialised on the warehouse)."""
    label = day if isinstance(day, date) else f"{day[0]}-{day[1]}"
    return ingest(home, load_profile(source), files, day=day, run_id=new_run_id(f"backfill-{label}"),
                  strict=strict).to_dict()


@flow(name="backfill-ingest", log_prints=False)
def backfill_ingest_flow(source: str, path: str, start: str, end: str, home: str | None = None,
                         strict: bool = False) -> list[dict]:
    """Ingest and validate every day of [start, end], replacing those days whole.

    Daily landing files (a date in the name) fan out one task per day on the flow's task runner;
    run it as ``backfill_ingest_flow.with_options(task_runner=task_runner_for_fanout())`` to pick
    threads or a Dask cluster from the environment (the CLI does). Files spanning many days (no
    date in the name) are read once for the whole range instead of once per day.
    """
    h = Home.resolve(home).ensure()
    d0, d1 = parse_day(start, "--start"), parse_day(end, "--end")
    if d1 < d0:
        raise IngestError(f"--end {d1} is before --start {d0}")
    files = list_input_files(Path(path))
    if not all(_DAY_IN_NAME.search(f.name) for f in files):
        return [ingest_day_task(h, source, files, (d0, d1), strict)]
    days = [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]
    futures = [(d, ingest_day_task.submit(h, source, files_for_day(files, d), d, strict)) for d in days if files_for_day(files, d)]
    results, errors = [], []
    for d, fut in futures:
        try:
            results.append(fut.result())
        except IngestError as exc:
            errors.append(f"{d}: {exc}")
    if errors:
        raise IngestError(f"{len(errors)} of {len(futures)} day(s) failed: " + " | ".join(errors))
    return results
