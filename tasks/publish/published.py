"""Recommendation tables for analysts: candidates -> gate -> published rows -> published.duckdb + lake.

The night, as far as this module goes (the flow owns the order and the gate):

1. :func:`write_candidates` per model and kind: top-k arrays from a model become rows of
   ``recs.candidates`` (kind column) in the working database, indices mapped to original ids in SQL.
2. The flow's gate compares champion and challenger; when it says yes, :func:`promote` replaces the
   published rows of (run_date, model) in ``recs.recommendations`` by those candidates and marks the
   version published, in one transaction. When it says no, nothing is called and yesterday's rows stay.
3. :func:`build_published` writes a NEW DuckDB file with the retained nights, the champions and their
   views, run registry and data-quality summaries, every table, view and column commented from the
   column dictionary (sql/published/columns.yaml), and renames it over ``published.duckdb``. DuckDB lets no process open a file
   that another process has open read-write (STACK-NOTES), and analysts hold the published file open
   read-only for hours: so the pipeline never opens that file at all. It builds a fresh one and
   ``os.replace``-s it; open readers keep the old inode, new connections get the new night.
   The same rows go to ``lake/recs/<kind>/run_date=D/data.parquet``, one atomic rename per partition.

SQL: the working db's side in ``sql/recs/``, the published file's in ``sql/published/``.
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
from tasks.common.models import GATE_FIGURE, Family
from tasks.common.sqlfiles import sql
from tasks.publish.dictionary import comment_statements

Kind = Literal["user_topn", "session_next", "item_similar"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# The family whose gate figure (tasks.common.models.GATE_FIGURE) ranks the models of a kind in recs.champions.
KIND_FAMILY: dict[Kind, Family] = {
    "user_topn": Family.USER,
    "session_next": Family.SESSION,
    "item_similar": Family.AUTOENCODER,
}

# Candidates are only needed until the gate has decided; a few nights cover a re-run of yesterday.
CANDIDATE_NIGHTS = 3
_PARTITION_RE = re.compile(r"^run_date=(\d{4}-\d{2}-\d{2})$")
# Names under which Arrow inputs are registered (fixed: sql/recs/candidates_insert, sql/published/champions).
_INPUT = "publish_input"
_FIGURES = "kind_figures"


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


def _count(result: list[tuple]) -> int:
    # DELETE / INSERT / UPDATE answer one row holding the affected count.
    return int(result[0][0]) if result else 0


def _candidate_table(
    kind: Kind, entity_ids: np.ndarray, item_idx: np.ndarray, scores: np.ndarray
) -> pa.Table:
    """Top-k arrays -> one Arrow row per real candidate, no row loop: (entity, entity_idx, rank, item_idx,
    score), with the original id in ``entity`` or, for item_similar, the item's index in ``entity_idx``."""
    item_idx = np.asarray(item_idx)
    scores = np.asarray(scores)
    if item_idx.ndim != 2 or scores.shape != item_idx.shape:
        raise PublishError(
            f"item_idx {item_idx.shape} and scores {scores.shape} must be the same [n, k] shape"
        )
    if len(entity_ids) != item_idx.shape[0]:
        raise PublishError(f"{len(entity_ids)} entity ids for {item_idx.shape[0]} rows of item_idx")
    # Negative index = padding (fewer than k candidates). A score of -inf is a model's "never this
    # item" (an item with no training support, an item the user has already seen): top-k still returns
    # such items when a row has fewer than k others, and they must not be published as recommendations.
    valid = (item_idx >= 0) & ~np.isneginf(scores)
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
    per_row = entities.take(pa.array(rows))
    no_ids = pa.nulls(len(per_row), pa.string())
    no_idx = pa.nulls(len(per_row), pa.int64())
    return pa.table(
        {
            "entity": no_ids if kind == "item_similar" else per_row,
            "entity_idx": per_row if kind == "item_similar" else no_idx,
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
    """Store one model's top-k of one kind for one night as ``recs.candidates`` rows; returns rows written.

    ``entity_ids``: original user / session ids (str) for user_topn / session_next; item_idx ints for
    item_similar (mapped to ids like the recommended items). ``item_idx`` / ``scores``: [n, k], column
    j = rank j+1; negative indices are padding and dropped, as are entries scored -inf. Replaces exactly the candidates of
    (kind, run_date, model), so a re-run is idempotent. Raises :class:`PublishError` (and writes nothing)
    when an index is missing from ``features.item_vocab``: a model/vocabulary mismatch.
    """
    if kind not in KINDS:
        raise PublishError(f"unknown kind {kind!r}; expected one of {KINDS}")
    table = _candidate_table(kind, entity_ids, item_idx, scores)
    params = {"kind": kind, "run_date": run_date, "model": model}
    with _working(home_or_con) as con:
        migrate_legacy_tables(con)
        con.register(_INPUT, table)
        try:
            with warehouse.transaction(con):
                con.execute(sql("recs/candidates_delete"), params).fetchall()
                written = _count(
                    con.execute(
                        sql("recs/candidates_insert"), params | {"model_version": model_version}
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


def prune_candidates(con: duckdb.DuckDBPyConnection, keep_nights: int = CANDIDATE_NIGHTS) -> int:
    """Drop candidates older than the newest ``keep_nights`` calendar nights of each kind; rows dropped."""
    return _count(con.execute(sql("recs/candidates_prune"), {"keep_nights": keep_nights}).fetchall())


def migrate_legacy_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """A warehouse from before the one-table layout: move its published per-kind rows into
    ``recs.recommendations`` and drop the per-kind tables, in one transaction. True if it migrated."""
    [(legacy,)] = con.execute(sql("recs/legacy_tables")).fetchall()
    if not legacy:
        return False
    with warehouse.transaction(con):
        con.execute(sql("recs/legacy_migrate")).fetchall()
        con.execute(sql("recs/legacy_drop"))
    return True


def promote(
    home_or_con: Home | duckdb.DuckDBPyConnection, run_date: date, model: str, model_version: str
) -> dict[str, int]:
    """The gate said yes: publish (run_date, model) = this version's candidates, in ONE transaction.

    Replaces the rows of (run_date, model), every kind, in ``recs.recommendations`` (other nights and
    models untouched), marks ``models.model_runs`` status='published' for (model, version),
    then prunes old candidates. Returns rows published per kind. Raises :class:`PublishError`, changing
    nothing, when the version has no candidates that night (which would otherwise erase the night) or
    is not in ``models.model_runs``.
    """
    params = {"run_date": run_date, "model": model}
    with _working(home_or_con) as con:
        migrate_legacy_tables(con)
        with warehouse.transaction(con):
            published = _promote_rows(con, params | {"model_version": model_version})
            prune_candidates(con)
    return published


def _promote_rows(con: duckdb.DuckDBPyConnection, params: dict) -> dict[str, int]:
    """Inside promote's transaction: replace the rows, check there were some, mark the version published."""
    model, model_version, run_date = params["model"], params["model_version"], params["run_date"]
    con.execute(sql("recs/promote_delete"), {"run_date": run_date, "model": model}).fetchall()
    con.execute(sql("recs/promote_insert"), params).fetchall()
    counts = dict(con.execute(sql("recs/promoted_counts"), {"run_date": run_date, "model": model}).fetchall())
    published = {kind: int(counts.get(kind, 0)) for kind in KINDS}
    if not any(published.values()):
        raise PublishError(f"{model} {model_version} has no candidates for {run_date}: nothing to promote")
    marked = _count(
        con.execute(sql("models/mark_published"), {"model": model, "model_version": model_version}).fetchall()
    )
    if marked == 0:
        raise PublishError(f"{model} {model_version} is not in models.model_runs: refusing to publish it")
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
    """Mirror ``pub.recs.recommendations`` as Hive partitions per kind; returns the partitions (re)written.

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
            con.execute(
                sql("published/lake_partition"), {"kind": kind, "run_date": run_date, "path": str(tmp)}
            ).fetchall()
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


# The published file's tables, built from the working db in this order (sql/published/<name>.sql);
# recommendations first: nights and champions read it.
_PUBLISHED_TABLES = (
    "recommendations",
    "nights",
    "champions",
    "model_runs",
    "eval_metrics",
    "daily_volume",
    "quarantine_summary",
    "validation_summary",
)
# Views, created on the file itself after the tables (sql/published/<name>.sql).
_PUBLISHED_VIEWS = ("latest", "champion_for_users", "champion_for_sessions", "champion_similar_items")


def kind_figures() -> pa.Table:
    """(kind, protocol, metric, k): the gate's figure of each kind's family, which ranks recs.champions."""
    figures = {kind: GATE_FIGURE[KIND_FAMILY[kind]] for kind in KINDS}
    rows = [{"kind": kind, "protocol": f.protocol, "metric": f.metric, "k": f.k} for kind, f in figures.items()]
    return pa.Table.from_pylist(rows, schema=pa.schema(
        [("kind", pa.string()), ("protocol", pa.string()), ("metric", pa.string()), ("k", pa.int32())]))


def _copy_tables(con: duckdb.DuckDBPyConnection, home: Home, cutoff: date | None) -> None:
    """Into the attached ``pub``: the schemas, every published table, then the lake from them."""
    con.execute(sql("published/schemas")).fetchall()
    con.register(_FIGURES, kind_figures())
    try:
        for name in _PUBLISHED_TABLES:
            con.execute(sql(f"published/{name}"), {"cutoff": cutoff} if name == "recommendations" else {}).fetchall()
    finally:
        con.unregister(_FIGURES)
    nights: dict[str, dict[date, str]] = {}
    for kind, run_date, rows, content in con.execute(sql("published/night_fingerprints")).fetchall():
        nights.setdefault(kind, {})[run_date] = f"{rows}:{content}"
    _write_lake(con, home, nights)


def _finish_file(path: Path) -> None:
    """On the new file itself: views (so their unqualified names bind to its own tables whatever catalog
    name a reader opens it under), the column dictionary's comments, and a checkpoint."""
    pub = warehouse.open_file(path, "published")
    try:
        for name in _PUBLISHED_VIEWS:
            pub.execute(sql(f"published/{name}")).fetchall()
        for statement in comment_statements("published"):
            pub.execute(statement).fetchall()
        pub.execute(sql("published/checkpoint")).fetchall()
    finally:
        pub.close()


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
            migrate_legacy_tables(con)
            newest = con.execute(sql("recs/newest_run_date")).fetchall()[0][0]
            # No night at all: the filter matches nothing and the published tables are empty.
            cutoff = newest - timedelta(days=retention_days - 1) if newest is not None else None
            con.execute(sql("published/attach"), {"path": str(new_file)}).fetchall()
            try:
                _copy_tables(con, home, cutoff)
            finally:
                con.execute(sql("published/detach")).fetchall()
        _finish_file(new_file)
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
