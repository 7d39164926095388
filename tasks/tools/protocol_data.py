"""Readers for the shared evaluation data sets, exactly as ``../shared/PROTOCOLS.md`` splits them.

P1 (``rsc15-100k``): session next-click. P2 (``ml-100k``): per-user leave-last-out top-N.
Everything is vectorised polars/numpy; the outputs are the plain containers of ``recmodels.data``.

Index conventions (documented because P3 tables and published results are keyed by them):
- P1 item vocabulary = the items of the *training* file, ``item_idx`` = rank of the numeric
  ``ItemId`` in ascending order (sorted ids: reproducible, independent of file order).
- P1 sessions keep the order of their first click in the file; clicks within a session are ordered
  by ``Time``, ties kept in file order (stable sort on the row number).
- P2 users / items: ``user_idx`` / ``item_idx`` = rank of the numeric id over the *whole* file, so all
  1,682 movies are candidates (items seen only in a test target are still ranked).
- P2 per-user order is (timestamp, item_id) with item_id compared **as an integer**. RecBole stores
  the ids as string tokens, but every token here is a decimal integer and the protocol speaks of the
  item id, so numeric order is the natural reading. It matters: string order picks a different
  test item for 145 of the 943 users (same-second ratings), and moves MostPopular's test HR@10 from
  0.0498 (numeric, the project's reference figure) to 0.0657 (string).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from recmodels.data import Interactions, Sessions, UserTargets
from tasks.common.sqlfiles import REPO_ROOT

RSC15_DIR = "rsc15-100k"
RSC15_PREFIX = "yoochoose-clicks-100k"
ML100K_INTER = "ml-100k/ml-100k.inter"


def default_data_dir() -> Path:
    """``../shared/data`` relative to the repository root."""
    return REPO_ROOT.parent / "shared" / "data"


def _read_clicks(path: Path) -> pl.DataFrame:
    return pl.read_csv(
        path,
        separator="\t",
        schema_overrides={"SessionId": pl.Int64, "ItemId": pl.Int64, "Time": pl.Float64},
    ).with_row_index("row")


def _to_sessions(df: pl.DataFrame, item_ids: np.ndarray) -> Sessions:
    """Clicks (with ``row``) -> Sessions; ``item_ids`` is the sorted vocabulary (idx -> original id)."""
    df = df.with_columns(pl.col("row").min().over("SessionId").alias("first_row")).sort(
        ["first_row", "Time", "row"]
    )
    sid = df["SessionId"].to_numpy()
    boundaries = np.flatnonzero(sid[1:] != sid[:-1]) + 1
    offsets = np.concatenate([[0], boundaries, [len(sid)]]).astype(np.int64)
    items = np.searchsorted(item_ids, df["ItemId"].to_numpy()).astype(np.int64)
    return Sessions(
        items=items,
        offsets=offsets,
        n_items=len(item_ids),
        times=df["Time"].to_numpy().astype(np.float64),
        session_ids=sid[offsets[:-1]],
    )


def _load_session_split(train_path: Path, test_path: Path) -> tuple[Sessions, Sessions, dict[str, Any]]:
    train = _read_clicks(train_path)
    test = _read_clicks(test_path)
    item_ids = np.sort(train["ItemId"].unique().to_numpy())
    n_test_clicks_raw = test.height
    test = test.filter(pl.col("ItemId").is_in(pl.Series(item_ids).implode()))
    test = test.filter(pl.len().over("SessionId") >= 2)
    tr = _to_sessions(train, item_ids)
    te = _to_sessions(test, item_ids)
    info = {
        "item_ids": item_ids,
        "n_items": len(item_ids),
        "n_train_sessions": tr.n_sessions,
        "n_train_clicks": len(tr.items),
        "n_test_sessions": te.n_sessions,
        "n_test_clicks_raw": n_test_clicks_raw,
        "n_test_clicks": len(te.items),
        "n_predictions": int(len(te.items) - te.n_sessions),
    }
    return tr, te, info


def load_p1(data_dir: Path | None = None) -> tuple[Sessions, Sessions, dict[str, Any]]:
    """P1 split: (train_full sessions, filtered test sessions, info dict with ``item_ids`` and counts)."""
    d = Path(data_dir or default_data_dir()) / RSC15_DIR
    return _load_session_split(d / f"{RSC15_PREFIX}_train_full.txt", d / f"{RSC15_PREFIX}_test.txt")


def load_p1_tuning(data_dir: Path | None = None) -> tuple[Sessions, Sessions, dict[str, Any]]:
    """Tuning split of P1: train_tr (vocabulary) and train_valid filtered by the same rules as test."""
    d = Path(data_dir or default_data_dir()) / RSC15_DIR
    return _load_session_split(d / f"{RSC15_PREFIX}_train_tr.txt", d / f"{RSC15_PREFIX}_train_valid.txt")


@dataclass(frozen=True)
class P2Data:
    """ml-100k leave-last-out split (PROTOCOLS.md P2)."""

    train: Interactions  # binary users x items CSR of train rows; ``sequences`` = train items in order
    valid: UserTargets  # second-to-last item; history = exclude = train
    test: UserTargets  # last item; history = exclude = train + valid
    full_sequences: Sessions  # per-user train + valid items in order (sequence models' test-time input)
    user_ids: np.ndarray  # user_idx -> original user id
    item_ids: np.ndarray  # item_idx -> original item id

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def _csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0  # binary: a repeated (user, item) pair is still one interaction
    return m


def load_p2(data_dir: Path | None = None) -> P2Data:
    """P2 split of ml-100k: every rating is an implicit interaction; last = test, second-to-last = valid."""
    path = Path(data_dir or default_data_dir()) / ML100K_INTER
    df = pl.read_csv(path, separator="\t", infer_schema_length=0).select(
        pl.col("user_id:token").cast(pl.Int64).alias("user"),
        pl.col("item_id:token").cast(pl.Int64).alias("item"),
        pl.col("timestamp:float").cast(pl.Float64).alias("ts"),
    )
    user_ids = np.sort(df["user"].unique().to_numpy())
    item_ids = np.sort(df["item"].unique().to_numpy())
    df = df.sort(["user", "ts", "item"])
    u = np.searchsorted(user_ids, df["user"].to_numpy()).astype(np.int64)
    i = np.searchsorted(item_ids, df["item"].to_numpy()).astype(np.int64)
    n_users, n_items = len(user_ids), len(item_ids)

    counts = np.bincount(u, minlength=n_users)
    if counts.min() < 3:
        raise ValueError("P2 needs at least 3 interactions per user (train, valid, test)")
    ends = np.cumsum(counts)
    pos_from_end = np.repeat(ends, counts) - np.arange(len(u)) - 1  # 0 = last event of its user
    is_test, is_valid = pos_from_end == 0, pos_from_end == 1
    is_train = pos_from_end >= 2

    shape = (n_users, n_items)
    train_m = _csr(u[is_train], i[is_train], shape)
    full_m = _csr(u[~is_test], i[~is_test], shape)
    users = np.arange(n_users, dtype=np.int64)
    valid_targets = np.empty(n_users, dtype=np.int64)
    valid_targets[u[is_valid]] = i[is_valid]
    test_targets = np.empty(n_users, dtype=np.int64)
    test_targets[u[is_test]] = i[is_test]

    def seqs(mask: np.ndarray) -> Sessions:
        offsets = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(u[mask], minlength=n_users), out=offsets[1:])
        return Sessions(
            items=i[mask],
            offsets=offsets,
            n_items=n_items,
            times=df["ts"].to_numpy()[mask],
            session_ids=user_ids,
        )

    return P2Data(
        train=Interactions(matrix=train_m, sequences=seqs(is_train)),
        valid=UserTargets(users=users, targets=valid_targets, history=train_m, exclude=train_m),
        test=UserTargets(users=users, targets=test_targets, history=full_m, exclude=full_m),
        full_sequences=seqs(~is_test),
        user_ids=user_ids,
        item_ids=item_ids,
    )
