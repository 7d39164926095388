"""One ingest run, start to end: stage every landing file, validate them together, commit them
together, publish the run's Data Docs, and leave no scratch file behind. The one place this sequence exists; the Prefect flows
(``flows/ingest.py``) call it and only choose how the files are staged (in order, or concurrently)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tasks.common.config import Home
from tasks.common.locks import run_alive
from tasks.common.profiles import SourceProfile
from tasks.common.progress import progress
from tasks.ingest.commit import commit_run
from tasks.ingest.gx_suite import publish_docs
from tasks.ingest.landing import Days, day_label, new_run_id, resolve_inputs
from tasks.ingest.scratch import cleanup_dead_scratch
from tasks.ingest.stage import COUNT_KEYS, FileReport, cleanup_scratch, stage_file
from tasks.ingest.validate import RunValidation, StagedBatch, docs_lock, validate_staged


@dataclass
class IngestReport:
    run_id: str
    profile: str
    day: str | None
    files: list[FileReport]
    days_written: list[str]
    seconds: dict[str, float] = field(default_factory=dict)  # run-level steps (validate, commit, data_docs)
    data_docs: Path | None = None  # the GX Data Docs index page holding this run's results

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(f, k) for f in self.files) for k in COUNT_KEYS}

    @property
    def flags(self) -> list[str]:
        return [flag for f in self.files for flag in f.flags]

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "day": self.day,
            "days_written": self.days_written,
            "totals": self.totals,
            "flags": self.flags,
            "seconds": self.seconds,
            "files": [{k: v for k, v in asdict(f).items() if k != "scratch"} for f in self.files],
        }


@dataclass(frozen=True)
class StageJob:
    """Everything :func:`stage_file` needs for one file of a run (picklable: paths, dates, ids)."""

    path: Path
    profile: SourceProfile
    home: Home
    run_id: str
    day: Days
    whole_day: bool
    strict: bool
    link_path: str | None


def stage_job(job: StageJob) -> FileReport:
    report = stage_file(job.path, job.profile, job.home, job.run_id, job.day, job.whole_day, job.strict,
                        job.link_path)
    progress(f"ingest {report.source_file}: read {report.rows_read:,}, accepted {report.rows_accepted:,}, "
             f"quarantined {report.rows_quarantined:,}")
    return report


def stage_in_order(jobs: Sequence[StageJob]) -> Iterable[FileReport]:
    return (stage_job(job) for job in jobs)


StageAll = Callable[[Sequence[StageJob]], Iterable[FileReport]]
Commit = Callable[[Home, str, SourceProfile, Days, Sequence[FileReport]], list[str]]
# (files, run_id, profile, home, day, whole_day) -> RunValidation; raises to refuse the run
Validate = Callable[..., Any]


def validate_run(validate: Validate, home: Home, run_id: str, profile: SourceProfile, day: Days, whole_day: bool,
                 reports: Sequence[FileReport], seconds: dict[str, float]) -> RunValidation:
    """The run's one validation of its staged files; each file's report gets its records."""
    t0 = time.perf_counter()
    run = validate([StagedBatch(r.source_file, Path(r.scratch)) for r in reports], run_id, profile, home, day,
                   whole_day)
    waited = run.timings.get("lock_wait", 0.0)  # another run's turn at the writer lock, not validation work
    seconds["validate"] = round(time.perf_counter() - t0 - waited, 3)
    seconds["validate_wait"] = round(waited, 3)
    for report, outcome in zip(reports, run.outcomes, strict=True):
        report.validation = outcome.results
    return run


@contextlib.contextmanager
def ingest_run(home: Home, run_id: str):
    """The life of one ingest run: its scratch files are marked alive, and dead runs' are removed."""
    home.ensure()
    with run_alive(home, run_id):
        cleanup_dead_scratch(home)
        yield


def ingest(
    home: Home,
    profile: SourceProfile,
    paths: Sequence[Path],
    day: Days = None,
    run_id: str | None = None,
    validate: Validate | None = None,
    on_file: Callable[[FileReport], None] | None = None,
    strict: bool = False,
    allow_outside_links: bool = False,
    stage_all: StageAll = stage_in_order,
    commit: Commit = commit_run,
) -> IngestReport:
    """Ingest ``paths`` (files) with ``profile``; ``day`` (a date or an inclusive ``(start, end)``)
    restricts the run to, and replaces, those days whole. ``stage_all`` stages the run's files (in
    order by default; the flows pass a concurrent one), ``validate`` validates them all at once,
    ``commit`` commits them (the flows pass a retried task)."""
    run_id = run_id or new_run_id()
    inputs = resolve_inputs(paths, allow_outside_links)
    whole_day = isinstance(day, date) and len(inputs) == 1
    jobs = [StageJob(lf.resolved, profile, home, run_id, day, whole_day, strict, lf.link_path) for lf in inputs]
    reports: list[FileReport] = []
    seconds: dict[str, float] = {}
    with ingest_run(home, run_id):
        try:
            for report in stage_all(jobs):
                reports.append(report)
                if on_file:
                    on_file(report)
            validation = validate_run(validate or validate_staged, home, run_id, profile, day, whole_day, reports,
                                      seconds)
            t0 = time.perf_counter()
            days = commit(home, run_id, profile, day, reports)
            seconds["commit"] = round(time.perf_counter() - t0, 3)
        finally:
            cleanup_scratch(reports)
    t0 = time.perf_counter()
    with docs_lock(home):
        docs = publish_docs(home.gx, [validation.suite_run] if validation.suite_run is not None else [])
    seconds["data_docs"] = round(time.perf_counter() - t0, 3)
    return IngestReport(run_id=run_id, profile=profile.name, day=day_label(day), files=reports,
                        days_written=days, seconds=seconds, data_docs=docs)
