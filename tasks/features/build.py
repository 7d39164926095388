"""Features stage: raw.clicks -> sessions, stable vocabularies, interactions, temporal splits.

Everything set-based runs in DuckDB from ``sql/features/*.sql``; this module only orders the steps,
binds parameters and turns query results into the ``recmodels.data`` containers (numpy / scipy,
no Python loops over rows).

Build (``build_features``), for a window of ``raw.clicks.event_date``:
  events.sql (sessionise, collapse repeats) -> filter_step.sql until it deletes nothing ->
  item/user/session vocab merges -> clear.sql -> sessions / session_events / interactions ->
  builds row. One transaction: readers see the previous build or this one, never half of it.

Splits (nightly shape, run date D): train = sessions ending before D-1, valid = ending on D-1,
train_full = ending before D, test = ending on D. Evaluation sessions follow P1's rules (items the
model did not train on removed, then sessions < 2 removed). User models read events by date:
history = events before the target day, targets = the target day's (user, item) pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recmodels.data import Interactions, Sessions, UserTargets
from tasks.common.night import FeatureConfig  # the one definition of [night.features]
from tasks.common.sqlfiles import sql
from tasks.common.warehouse import transaction

Entity = Literal["user", "session"]
Weighting = Literal["binary", "count", "decay", "weight"]


@dataclass(frozen=True)
class BuildSummary:
    start_date: date
    end_date: date
    n_raw_events: int
    n_events: int
    n_sessions: int
    n_items: int
    filter_rounds: int


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``features`` schema, tables and the interactions macro (idempotent)."""
    con.execute(sql("features/schema"))
    con.execute(sql("features/entity_item_weights"))


def build_features(
    con: duckdb.DuckDBPyConnection, start: date, end: date, config: FeatureConfig | None = None
) -> BuildSummary:
    """Rebuild the features of event dates ``[start, end]``; vocabularies only grow (see schema.sql)."""
    config = config or FeatureConfig()
    ensure_schema(con)
    window = {"start_date": start, "end_date": end}
    with transaction(con):
        con.execute(
            sql("features/events"),
            {
                **window,
                "derive_from_user": config.derive_sessions_from_user,
                "gap_minutes": float(config.gap_minutes),
                "collapse_repeats": config.collapse_repeats,
            },
        )
        filter_params = {
            "min_item_support": config.min_item_support,
            "min_session_length": config.min_session_length,
        }
        rounds = 0
        while True:  # each round is one set-based DELETE; stops at the fixed point
            rounds += 1
            # fetchall, not fetchone: DuckDB 2.0 refuses new work while a result is unfinished
            [(deleted,)] = con.execute(sql("features/filter_step"), filter_params).fetchall()
            if deleted == 0:
                break
        con.execute(sql("features/item_vocab"))
        con.execute(sql("features/user_vocab"))
        if config.entity == "session":
            con.execute(sql("features/session_vocab"))
        con.execute(sql("features/clear"))
        con.execute(sql("features/sessions"))  # numbers the sessions session_events refers to
        con.execute(sql("features/session_events"))
        con.execute(sql("features/interactions"), {**window, "entity": config.entity})
        con.execute(
            sql("features/record_build"),
            {
                **window,
                "entity": config.entity,
                "config": json.dumps(config.model_dump(), sort_keys=True),
                "filter_rounds": rounds,
            },
        )
        con.execute(sql("features/drop_work"))
    [row] = con.execute(sql("features/latest_build")).fetchall()
    n_raw, n_events, n_sessions, n_items = map(int, row[3:7])
    return BuildSummary(start, end, n_raw, n_events, n_sessions, n_items, filter_rounds=rounds)


def vocab_sizes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``{"n_items", "n_users", "n_sessions"}``: current sizes of the stable vocabularies."""
    res = con.execute(sql("features/vocab_sizes")).fetchnumpy()
    return {k: int(v[0]) for k, v in res.items()}


# ---------------------------------------------------------------------------------------- loaders


def load_sessions(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    known_from: date | None = None,
    known_before: date | None = None,
    min_length: int = 1,
) -> Sessions:
    """Sessions ending on days ``[start, end]``, ordered by (start_ts, session_id), events by position.

    With ``known_before``, items absent from sessions ending in ``[known_from, known_before)`` are
    dropped first, then sessions shorter than ``min_length`` (the P1/P4 evaluation rules).
    """
    window = {"start_date": start, "end_date": end}
    # con.sql(...).to_arrow_table(): execute(...).to_arrow_table() would copy the rows once more
    events = con.sql(
        sql("features/load_sessions"),
        params={
            **window,
            "known_from": known_from or date.min,
            "known_before": known_before,
            "min_length": min_length,
        },
    ).to_arrow_table()
    ids = con.sql(sql("features/load_session_ids"), params=window).to_arrow_table()
    n_items = vocab_sizes(con)["n_items"]
    return _sessions_from_arrow(events, ids, n_items)


def _sessions_from_arrow(events: pa.Table, ids: pa.Table, n_items: int) -> Sessions:
    session_no = events.column("session_no").to_numpy()
    items = events.column("item_idx").to_numpy().astype(np.int64, copy=False)
    times = events.column("t").to_numpy().astype(np.float64, copy=False)
    # rows arrive grouped by session_no: a session starts wherever the number changes
    starts = np.flatnonzero(np.r_[True, session_no[1:] != session_no[:-1]])[: len(session_no)]
    offsets = np.r_[starts, len(items)].astype(np.int64)
    # ids is sorted by session_no and holds every session of the window: look the kept ones up
    at = np.searchsorted(ids.column("session_no").to_numpy(), session_no[starts])
    session_ids = ids.column("session_id").take(pa.array(at)).to_numpy(zero_copy_only=False)
    return Sessions(items=items, offsets=offsets, n_items=n_items, times=times, session_ids=session_ids)


def load_interaction_matrix(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    weighting: Weighting = "binary",
    half_life_days: float = 7.0,
    entity: Entity = "user",
    ref_ts: datetime | None = None,
) -> sp.csr_matrix:
    """Entity x item CSR (float32) over events dated ``[start, end]``; shape = current vocab sizes.

    binary: 1 per (row, item) seen; count: number of events; decay: sum over events of
    ``0.5 ** (age_days / half_life_days)``, age measured to ``ref_ts`` (default: end of ``end``);
    weight: sum of the events' weights (the source profile's ``[events] weights`` per event type,
    carried by ``raw.clicks.weight``; a collapsed run of repeats counts its largest weight once).
    """
    if weighting not in ("binary", "count", "decay", "weight"):
        raise ValueError(f"unknown weighting {weighting!r}")
    if half_life_days <= 0:
        raise ValueError("half_life_days must be > 0")
    res = con.execute(
        sql("features/load_interactions"),
        {
            "start_date": start,
            "end_date": end,
            "entity": entity,
            "ref_ts": ref_ts,
            "half_life_days": float(half_life_days),
        },
    ).fetchnumpy()
    rows = np.asarray(res["entity_idx"], dtype=np.int64)
    cols = np.asarray(res["item_idx"], dtype=np.int32)
    if weighting == "binary":
        data = np.ones(len(rows), dtype=np.float32)
    elif weighting == "count":
        data = np.asarray(res["n_events"], dtype=np.float32)
    elif weighting == "weight":
        data = np.asarray(res["weight_sum"], dtype=np.float32)
    else:
        data = np.asarray(res["decay_weight"], dtype=np.float32)
    sizes = vocab_sizes(con)
    shape = (sizes["n_users" if entity == "user" else "n_sessions"], sizes["n_items"])
    # rows come sorted by (row, column) and unique: the arrays are a CSR matrix as they stand
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((data, cols, indptr), shape=shape)


def load_user_targets(
    con: duckdb.DuckDBPyConnection,
    history_from: date,
    history_to: date,
    target_day: date,
    target_last: date | None = None,
    *,
    entity: Entity = "user",
    weighting: Weighting = "binary",
    half_life_days: float = 7.0,
) -> UserTargets:
    """P4 users: one row per rankable (entity, item) of ``target_day`` .. ``target_last`` (default the
    one day; see ``user_targets.sql``).

    ``history`` = the entity's weighted interactions dated ``[history_from, history_to]`` (model
    input); ``exclude`` = the same pattern, binary (removed from the ranking).
    """
    res = con.execute(
        sql("features/user_targets"),
        {
            "history_from": history_from,
            "history_to": history_to,
            "target_from": target_day,
            "target_to": target_last or target_day,
            "entity": entity,
        },
    ).fetchnumpy()
    users = np.asarray(res["entity_idx"], dtype=np.int64)
    targets = np.asarray(res["item_idx"], dtype=np.int64)
    full = load_interaction_matrix(
        con, history_from, history_to, weighting=weighting, half_life_days=half_life_days, entity=entity
    )
    history = full[users]
    exclude = history.copy()
    exclude.data[:] = 1.0
    return UserTargets(users=users, targets=targets, history=history, exclude=exclude)


# ----------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitSpec:
    """Nightly temporal split for run date D (all bounds inclusive days)."""

    train_start: date  # D - train_days
    valid_day: date  # D - 1, the last validation day; train_full = [train_start, valid_day]
    test_day: date  # D
    entity: Entity = "user"
    valid_start: date | None = None  # first validation day (default valid_day); train ends the day before

    @property
    def valid_from(self) -> date:
        return self.valid_start or self.valid_day

    @property
    def train_end(self) -> date:
        return self.valid_from - timedelta(days=1)


def temporal_split(con: duckdb.DuckDBPyConnection, run_date: date, train_days: int, valid_days: int = 1) -> SplitSpec:
    """Split for run date D using the ``train_days`` days before D, the last ``valid_days`` of them for
    early stopping (more than one where a single day holds too few events to choose an epoch by);
    checks the latest build covers it."""
    if valid_days < 1 or train_days < valid_days + 1:
        raise ValueError("need valid_days >= 1 and train_days >= valid_days + 1 (at least one day to train on)")
    spec_start = run_date - timedelta(days=train_days)
    rows = con.execute(sql("features/latest_build")).fetchall()
    if not rows:
        raise ValueError("no features build found: run build_features first")
    start, end, entity = rows[0][:3]
    if start > spec_start or end < run_date:
        raise ValueError(f"latest features build covers {start}..{end}, split needs {spec_start}..{run_date}")
    return SplitSpec(
        train_start=spec_start, valid_day=run_date - timedelta(days=1), test_day=run_date, entity=entity,
        valid_start=run_date - timedelta(days=valid_days),
    )


@dataclass(frozen=True)
class SessionSplit:
    train: Sessions  # ending before the validation days
    valid: Sessions  # ending on the validation days, P1 rules w.r.t. train
    train_full: Sessions  # ending before test_day (refit)
    test: Sessions  # ending on test_day, P1 rules w.r.t. train_full


def load_session_split(con: duckdb.DuckDBPyConnection, spec: SplitSpec, min_length: int = 2) -> SessionSplit:
    def evaluation(first: date, last: date) -> Sessions:
        return load_sessions(
            con, first, last, known_from=spec.train_start, known_before=first, min_length=min_length
        )

    return SessionSplit(
        train=load_sessions(con, spec.train_start, spec.train_end),
        valid=evaluation(spec.valid_from, spec.valid_day),
        train_full=load_sessions(con, spec.train_start, spec.valid_day),
        test=evaluation(spec.test_day, spec.test_day),
    )


@dataclass(frozen=True)
class UserSplit:
    train: Interactions  # events before the validation days
    valid: UserTargets  # the validation days' (user, item) pairs, history = train
    train_full: Interactions  # events before test_day
    test: UserTargets  # test_day's pairs, history = train_full


def load_user_split(
    con: duckdb.DuckDBPyConnection,
    spec: SplitSpec,
    weighting: Weighting = "binary",
    half_life_days: float = 7.0,
) -> UserSplit:
    kw = {"entity": spec.entity, "weighting": weighting, "half_life_days": half_life_days}
    return UserSplit(
        train=Interactions(load_interaction_matrix(con, spec.train_start, spec.train_end, **kw)),
        valid=load_user_targets(con, spec.train_start, spec.train_end, spec.valid_from, spec.valid_day, **kw),
        train_full=Interactions(load_interaction_matrix(con, spec.train_start, spec.valid_day, **kw)),
        test=load_user_targets(con, spec.train_start, spec.valid_day, spec.test_day, **kw),
    )
