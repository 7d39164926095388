"""Recommendation tables for analysts: candidates -> gate -> published rows -> published.duckdb + lake.

The night, as far as this module goes (the flow owns the order and the gate):

1. :func:`write_candidates` per model and kind: top-k arrays from a model become rows of
   ``recs.candidate_<kind>`` in the working database, indices mapped to original ids in SQL.
2. The flow's gate compares champion and challenger; when it says yes, :func:`promote` replaces the
   published rows of (run_date, model) in ``recs.<kind>`` by those candidates and marks the version
   published, in one transaction. When it says no, nothing is called and yesterday's rows stay.
3. :func:`build_published` writes a NEW DuckDB file with the retained nights, views, run registry and
   data-quality summaries, and renames it over ``published.duckdb``. DuckDB lets no process open a file
   that another process has open read-write (STACK-NOTES), and analysts hold the published file open
   read-only for hours: so the pipeline never opens that file at all. It builds a fresh one and
   ``os.replace``-s it; open readers keep the old inode, new connections get the new night.
   The same rows go to ``lake/recs/<kind>/run_date=D/data.parquet``, one atomic rename per partition.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, get_args

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common import warehouse
from tasks.common.config import Home
from tasks.common.sqlfiles import sql

Kind = Literal["user_topn", "session_next", "item_similar"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# Candidates are only needed until the gate has decided; a few nights cover a re-run of yesterday.
CANDIDATE_NIGHTS = 3
_PARTITION_RE = re.compile(r"^run_date=(\d{4}-\d{2}-\d{2})$")
# Name under which write_candidates registers its Arrow input (fixed: sql/publish/candidates_insert_*).
_INPUT = "publish_input"


class PublishError(ValueError):
    """Inputs that would publish wrong or no rows (bad shapes, unknown indices, nothing to promote)."""


@contextlib.contextmanager
def _working(home_or_con: Home | duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The caller's connection as is, or a working-db session opened (and closed) for this call."""
    if isinstance(home_or_con, Home):
        with warehouse.session(home_or_con) as con:
            yield con
    else:
        yield home_or_con


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _count(result: list[tuple]) -> int:
    # DELETE / INSERT / UPDATE answer one row holding the affected count.
    return int(result[0][0]) if result else 0


def _candidate_table(
    kind: Kind, entity_ids: np.ndarray, item_idx: np.ndarray, scores: np.ndarray
) -> pa.Table:
    """Top-k arrays -> one Arrow row per real candidate (entity, rank, item_idx, score), no row loop."""
    item_idx = np.asarray(item_idx)
    scores = np.asarray(scores)
    if item_idx.ndim != 2 or scores.shape != item_idx.shape:
        raise PublishError(
            f"item_idx {item_idx.shape} and scores {scores.shape} must be the same [n, k] shape"
        )
    if len(entity_ids) != item_idx.shape[0]:
        raise PublishError(f"{len(entity_ids)} entity ids for {item_idx.shape[0]} rows of item_idx")
    valid = item_idx >= 0  # negative = padding (fewer than k candidates)
    if np.isnan(scores[valid]).any():
        raise PublishError(f"{kind}: NaN scores among real candidates (model output is broken)")
    # Dense ranks 1..m over the real candidates of each row, even if padding is not only at the end.
    rank = np.cumsum(valid, axis=1, dtype=np.int32)[valid]
    rows = np.nonzero(valid)[0]
    if kind == "item_similar":
        entities = pa.array(np.asarray(entity_ids, dtype=np.int64))
    else:
        entities = pa.array(entity_ids, type=pa.string())
    if pc.count_distinct(entities, mode="all").as_py() != len(entities):
        raise PublishError(f"{kind}: duplicate entity ids: each user/session/item may appear once")
    return pa.table(
        {
            "entity": entities.take(pa.array(rows)),
            "rank": pa.array(rank),
            "item_idx": pa.array(item_idx[valid].astype(np.int64, copy=False)),
            "score": pa.array(scores[valid].astype(np.float32, copy=False)),
        }
    )


def write_candidates(
    home_or_con: Home | duckdb.DuckDBPyConnection,
    kind: Kind,
    run_date: date,
    model: str,
    model_version: str,
    entity_ids: np.ndarray,
    item_idx: np.ndarray,
    scores: np.ndarray,
) -> int:
    """Store one model's top-k for one night as ``recs.candidate_<kind>`` rows; returns rows written.

    ``entity_ids``: original user / session ids (str) for user_topn / session_next; item_idx ints for
    item_similar (mapped to ids like the recommended items). ``item_idx`` / ``scores``: [n, k], column
    j = rank j+1; negative indices are padding and dropped. Replaces exactly the candidates of
    (kind, run_date, model), so a re-run is idempotent. Raises :class:`PublishError` (and writes nothing)
    when an index is missing from ``features.item_vocab``: a model/vocabulary mismatch.
    """
    if kind not in KINDS:
        raise PublishError(f"unknown kind {kind!r}; expected one of {KINDS}")
    table = _candidate_table(kind, entity_ids, item_idx, scores)
    params = {"run_date": run_date, "model": model}
    with _working(home_or_con) as con:
        con.register(_INPUT, table)
        try:
            with _transaction(con):
                con.execute(sql(f"publish/candidates_delete_{kind}"), params).fetchall()
                written = _count(
                    con.execute(
                        sql(f"publish/candidates_insert_{kind}"), params | {"model_version": model_version}
                    ).fetchall()
                )
                if written != table.num_rows:
                    raise PublishError(
                        f"{kind} {model} {model_version} {run_date}: {table.num_rows - written} of "
                        f"{table.num_rows} candidates have an item_idx missing from features.item_vocab "
                        "(model trained on another vocabulary?)"
                    )
        finally:
            con.unregister(_INPUT)
    return written


def prune_candidates(con: duckdb.DuckDBPyConnection, keep_nights: int = CANDIDATE_NIGHTS) -> dict[str, int]:
    """Drop candidates older than the newest ``keep_nights`` calendar nights of each kind."""
    return {
        kind: _count(
            con.execute(sql(f"publish/candidates_prune_{kind}"), {"keep_nights": keep_nights}).fetchall()
        )
        for kind in KINDS
    }


def promote(
    home_or_con: Home | duckdb.DuckDBPyConnection, run_date: date, model: str, model_version: str
) -> dict[str, int]:
    """The gate said yes: publish (run_date, model) = this version's candidates, in ONE transaction.

    Replaces the rows of (run_date, model) in ``recs.user_topn / session_next / item_similar`` (other
    nights and models untouched), marks ``models.model_runs`` status='published' for (model, version),
    then prunes old candidates. Returns rows published per kind. Raises :class:`PublishError`, changing
    nothing, when the version has no candidates that night (which would otherwise erase the night) or
    is not in ``models.model_runs``.
    """
    params = {"run_date": run_date, "model": model}
    with _working(home_or_con) as con, _transaction(con):
        published: dict[str, int] = {}
        for kind in KINDS:
            con.execute(sql(f"publish/promote_delete_{kind}"), params).fetchall()
            published[kind] = _count(
                con.execute(
                    sql(f"publish/promote_insert_{kind}"), params | {"model_version": model_version}
                ).fetchall()
            )
        if not any(published.values()):
            raise PublishError(
                f"{model} {model_version} has no candidates for {run_date}: nothing to promote"
            )
        marked = _count(
            con.execute(
                sql("publish/mark_published"), {"model": model, "model_version": model_version}
            ).fetchall()
        )
        if marked == 0:
            raise PublishError(f"{model} {model_version} is not in models.model_runs: refusing to publish it")
        prune_candidates(con)
    return published


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_builds(home: Home) -> None:
    # Leftovers of a build that crashed; only called while this process holds the working db (the
    # single-writer lock), so no other build can be writing them.
    for leftover in home.tmp.glob("published-*.duckdb*"):
        leftover.unlink(missing_ok=True)


def _write_lake(
    con: duckdb.DuckDBPyConnection, home: Home, nights: dict[str, dict[date, str]]
) -> dict[str, list[date]]:
    """Mirror ``pub.recs.*`` as Hive partitions; returns the partitions (re)written per kind.

    ``nights``: kind -> run_date -> fingerprint of that night's rows. A partition is rewritten only when
    its ``_fingerprint`` differs (so a night costs one partition, not the whole retention window), and
    partitions absent from the published file (beyond retention) are removed.
    """
    written: dict[str, list[date]] = {}
    for kind in KINDS:
        root = home.lake / "recs" / kind
        root.mkdir(parents=True, exist_ok=True)
        keep = nights.get(kind, {})
        written[kind] = []
        for run_date, fingerprint in sorted(keep.items()):
            part = root / f"run_date={run_date.isoformat()}"
            data, stamp = part / "data.parquet", part / "_fingerprint"
            if data.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
                continue
            part.mkdir(exist_ok=True)
            for stale in part.glob(".*.tmp"):  # leftovers of a crashed write
                stale.unlink()
            # Same directory, so the rename is atomic: a reader globbing *.parquet sees the old file or
            # the new one, never a partial one (the temp name does not end in .parquet). The stamp is
            # written after the data, so a crash in between only causes a rewrite next night.
            tmp = part / f".data-{uuid.uuid4().hex}.tmp"
            con.execute(sql(f"publish/lake_{kind}"), {"run_date": run_date, "path": str(tmp)}).fetchall()
            _fsync(tmp)
            os.replace(tmp, data)
            _fsync(part)
            stamp_tmp = part / f".stamp-{uuid.uuid4().hex}.tmp"
            stamp_tmp.write_text(fingerprint)
            os.replace(stamp_tmp, stamp)
            written[kind].append(run_date)
        for part in root.iterdir():
            match = _PARTITION_RE.match(part.name)
            if part.is_dir() and match and date.fromisoformat(match.group(1)) not in keep:
                shutil.rmtree(part)
        _fsync(root)
    return written


def build_published(home: Home, retention_days: int = 30) -> Path:
    """Write a new ``published.duckdb`` (and the recs lake) from the working db; atomically swapped in.

    Keeps the nights ``run_date > newest - retention_days`` (newest over all kinds), so retention 1
    publishes only the newest night. Safe while analysts hold the current published file open read-only.
    """
    if retention_days < 1:
        raise PublishError(f"retention_days must be >= 1, got {retention_days}")
    home.ensure()
    target = home.published_db
    new_file = home.tmp / f"published-{uuid.uuid4().hex}.duckdb"
    try:
        with warehouse.session(home) as con:
            _remove_stale_builds(home)
            newest = con.execute(sql("publish/newest_run_date")).fetchall()[0][0]
            # No night at all: the filter below matches nothing and the published tables are empty.
            cutoff = newest - timedelta(days=retention_days - 1) if newest is not None else None
            con.execute(sql("publish/attach"), {"path": str(new_file)}).fetchall()
            try:
                con.execute(sql("publish/schemas")).fetchall()
                for kind in KINDS:
                    con.execute(sql(f"publish/copy_{kind}"), {"cutoff": cutoff}).fetchall()
                con.execute(sql("publish/nights")).fetchall()
                for name in (
                    "copy_model_runs",
                    "copy_eval_metrics",
                    "daily_volume",
                    "quarantine_summary",
                    "validation_summary",
                ):
                    con.execute(sql(f"publish/{name}")).fetchall()
                nights: dict[str, dict[date, str]] = {}
                for kind, run_date, rows, content in con.execute(
                    sql("publish/night_fingerprints")
                ).fetchall():
                    nights.setdefault(kind, {})[run_date] = f"{rows}:{content}"
                _write_lake(con, home, nights)
            finally:
                con.execute(sql("publish/detach")).fetchall()
        # Views are created on the file itself, so their unqualified names bind to its own tables
        # whatever catalog name a reader later opens it under.
        pub = duckdb.connect(str(new_file), config={"autoinstall_known_extensions": False})
        try:
            for kind in KINDS:
                pub.execute(sql(f"publish/latest_{kind}")).fetchall()
            pub.execute(sql("publish/checkpoint")).fetchall()
        finally:
            pub.close()
        _fsync(new_file)
        os.replace(new_file, target)
        _fsync(target.parent)
    finally:
        for leftover in (new_file, new_file.with_name(new_file.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return target


write_candidates_task = task(name="write-candidates", cache_policy=NO_CACHE)(write_candidates)
promote_task = task(name="promote", cache_policy=NO_CACHE)(promote)
publish_task = task(name="publish", cache_policy=NO_CACHE)(build_published)
