"""Commit an ingest run, publish its lake files, and repair any run a crash left half-published.

The commit holds the warehouse's cross-process lock (``tasks.common.locks.warehouse_lock``) from the
database transaction through the lake publish: one transaction replaces what the run replaces (a
day with ``--date``, else these landing files' earlier rows), loads every file's accepted rows and
quarantine, and writes the run's manifest (``ops.lake_files``); a file's statements do not depend on
how many days it spans. Then the run's Parquet files are renamed into the lake and the files it
replaces are removed. A crash or a retry at any point is repaired by the next commit of any run
(ingest, backfill, nightly), which first finishes every committed run from its manifest, rebuilding
a lost file from ``raw.clicks``. A retried commit of a committed run only finishes its publish.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from tasks.common.config import Home
from tasks.common.faults import crash_point
from tasks.common.locks import WRITE_LOCK, warehouse_lock
from tasks.common.profiles import SourceProfile
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import connect, transaction
from tasks.ingest.landing import Days, day_span, lake_name
from tasks.ingest.stage import COUNT_KEYS, FileReport, staged_parts


def commit_run(home: Home, run_id: str, profile: SourceProfile, day: Days, files: Sequence[FileReport]) -> list[str]:
    """Make the run visible: one DuckDB transaction, then the lake publish, both under the warehouse
    lock. Idempotent: a retry of a committed run only finishes its publish (never commits twice)."""
    with warehouse_lock(home, what=f"ingest {run_id}"), WRITE_LOCK, contextlib.closing(connect(home)) as con:
        publish_committed(home, con)  # finish any run a crash or a failed rename left half-published
        [(state,)] = con.execute(sql("staging/run_state"), {"run_id": run_id}).fetchall() or [(None,)]
        if state is None:
            _register_legacy_lake(home, con)
            with transaction(con):
                _commit(con, run_id, profile, day, files)
            crash_point("ingest-after-commit")
        _publish_run(home, con, run_id)
        return [d for (d,) in con.execute(sql("staging/run_days"), {"run_id": run_id}).fetchall()]


def _commit(con: duckdb.DuckDBPyConnection, run_id: str, profile: SourceProfile, day: Days,
            files: Sequence[FileReport]) -> None:
    file_ids = [f.file_id for f in files]
    scope = day_span(day) | {"file_ids": file_ids}
    con.execute(sql("staging/commit_run"), scope)
    con.execute(sql("staging/retire_lake_files"), scope | {"run_id": run_id})
    con.execute(sql("staging/clear_quarantine"), {"file_ids": file_ids})
    now = datetime.now(UTC).replace(tzinfo=None)
    parts = [staged_parts(f) for f in files]
    every_part = [str(p) for staged in parts for p in staged]
    if every_part:
        # One statement for the run's rows, whatever its number of files: appends of a few hundred
        # thousand rows each cost a third more than one append of them all (measured, 10 x 200k rows).
        con.execute(sql("staging/insert_accepted"), {"files": every_part})
    for f, staged in zip(files, parts, strict=True):
        if staged:
            con.execute(sql("staging/add_lake_files"), {
                "run_id": run_id, "file_id": f.file_id,
                "rel_paths": [f"{p.parent.name}/{lake_name(f.source_file, f.file_id, run_id, i)}"
                              for i, p in enumerate(staged)],
                "event_dates": [p.parent.name.split("=", 1)[1] for p in staged],
                "staged_paths": [str(p) for p in staged]})
        con.execute(sql("staging/attach_scratch"), {"path": f.scratch})
        try:
            con.execute(sql("staging/quarantine_from_scratch"), {
                "source_file": f.source_file, "file_id": f.file_id, "run_id": run_id, "quarantined_at": now})
        finally:
            con.execute(sql("staging/detach_scratch"))
        if f.validation:  # the run's validation records of this file (a few per check, held in memory)
            con.executemany(sql("staging/store_result"), f.validation)
        con.execute(sql("staging/record_file"), _file_record(run_id, profile, day, f))
    con.execute(sql("staging/record_run"), {"run_id": run_id})


def _file_record(run_id: str, profile: SourceProfile, day: Days, f: FileReport) -> dict[str, object]:
    return {
        "run_id": run_id, "source_file": f.source_file, "path": f.path, "profile": profile.name, **day_span(day),
        "sha256": f.sha256, "size_bytes": f.size_bytes, "file_id": f.file_id, "link_path": f.link_path,
        **{k: getattr(f, k) for k in COUNT_KEYS}, "min_ts": f.min_ts, "max_ts": f.max_ts,
        "flags": "; ".join(f.flags) or None,
    }


def _register_legacy_lake(home: Home, con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from before the manifest: its lake files become live entries of no known file."""
    if con.execute(sql("staging/manifest_size")).fetchall()[0][0]:
        return
    for part in sorted(home.clicks_lake.glob("event_date=*/*.parquet")):
        con.execute(sql("staging/register_legacy_lake_file"),
                    {"rel_path": f"{part.parent.name}/{part.name}", "event_date": part.parent.name.split("=", 1)[1]})


def publish_committed(home: Home, con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Finish every committed run whose lake files are not all in place; returns their run ids.

    Called by every commit (so the next run of any kind repairs a crash), and by the nightly before
    it reads the warehouse. The caller holds the warehouse lock, or this takes it."""
    if con is None:
        with warehouse_lock(home, what="lake repair"), WRITE_LOCK, contextlib.closing(connect(home)) as c:
            return publish_committed(home, c)
    runs = [r for (r,) in con.execute(sql("staging/committed_runs")).fetchall()]
    for run_id in runs:
        _publish_run(home, con, run_id)
    return runs


def _publish_run(home: Home, con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Place a committed run's files (rename; rebuild from raw.clicks when the staged copy is gone),
    remove the files it retires, then mark the manifest. Every step is safe to repeat."""
    lake = home.clicks_lake
    entries = con.execute(sql("staging/run_lake_files"), {"run_id": run_id}).fetchall()
    lost: set[tuple[str | None, date]] = set()  # (landing file, day) groups to rebuild from raw.clicks
    for rel_path, state, staged_path, file_id, event_date in entries:
        if state != "pending":
            continue
        target = home.inside(lake / rel_path)
        if target.exists():
            continue
        if staged_path and Path(staged_path).exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged_path, target)
            crash_point("ingest-mid-publish")
        else:
            lost.add((file_id, event_date))
    for file_id, event_date in sorted(lost, key=str):
        group = sorted(r for r, st, _, fid, d in entries if st == "pending" and fid == file_id and d == event_date)
        _rebuild_group(home, con, run_id, file_id, event_date, group)
    for rel_path, state, *_ in entries:
        if state == "retired":
            old = home.inside(lake / rel_path)
            old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only when empty
                old.parent.rmdir()
    with transaction(con):
        con.execute(sql("staging/finish_run_files"), {"run_id": run_id})
        con.execute(sql("staging/finish_run_live"), {"run_id": run_id})
        con.execute(sql("staging/finish_run"), {"run_id": run_id})


def _rebuild_group(home: Home, con: duckdb.DuckDBPyConnection, run_id: str, file_id: str | None,
                   event_date: date, group: list[str]) -> None:
    """All rows of (run, landing file, day) into the group's first file; its other pieces are dropped."""
    lake = home.clicks_lake
    first = home.inside(lake / group[0])
    first.parent.mkdir(parents=True, exist_ok=True)
    tmp = first.with_name(f".{first.name}.{uuid.uuid4().hex[:6]}.tmp")
    con.execute(sql("staging/rebuild_lake_file"),
                {"run_id": run_id, "file_id": file_id, "event_date": event_date, "out": str(tmp)})
    for rel in group[1:]:
        home.inside(lake / rel).unlink(missing_ok=True)
        con.execute(sql("staging/drop_lake_file"), {"rel_path": rel})
    os.replace(tmp, first)
