"""The one protocol runner (``../shared/PROTOCOLS.md``): P1 / P2 / P3, reused by the nightly P4 check.

Every entry point ranks all candidates (full ranking), uses ``recmodels.metrics`` (conservative
ties) and returns ``{"metrics": {...}, "n_predictions": n}``. Scoring is chunked so that one chunk's
``rows x n_items`` float32 block stays under ``max_block_bytes`` (256 MB by default, i.e. 64 rows
at 1M items), whatever the catalogue size.

P4 (nightly: train on days <= D-1, evaluate on day D) needs no code of its own: the nightly task
builds day D's sessions with P1's rules (items unknown to the model dropped, sessions with < 2
clicks dropped) and calls :func:`evaluate_sessions`; for user models it builds a ``UserTargets`` with
one row per (user, day-D item), history = the user's items up to D-1, exclude = that history, and
calls :func:`evaluate_users`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from recmodels.base import SessionRecommender, UserRecommender
from recmodels.data import Sessions, UserTargets
from recmodels.metrics import RankingMetrics

MAX_BLOCK_BYTES = 256 * 1024**2


def _rows_per_chunk(n_items: int, max_block_bytes: int) -> int:
    return max(1, max_block_bytes // (4 * max(n_items, 1)))


def _width(model, n_items: int) -> int:
    """Candidates = every item the data or the model knows (a model never loses items it can score)."""
    return max(n_items, int(getattr(model, "n_items", 0) or 0))


def _exclude_block(exclude, a: int, b: int, n_items: int, device: torch.device) -> torch.Tensor:
    block = exclude[a:b].toarray() != 0
    if block.shape[1] < n_items:
        block = np.pad(block, ((0, 0), (0, n_items - block.shape[1])))
    return torch.from_numpy(block).to(device)


def _fit_width(scores: torch.Tensor, n_items: int) -> torch.Tensor:
    """Pad with -inf the items a model does not know (its vocabulary is older than the test data)."""
    if scores.shape[1] >= n_items:
        return scores
    pad = torch.full((scores.shape[0], n_items - scores.shape[1]), -math.inf, device=scores.device)
    return torch.cat([scores.float(), pad], dim=1)


def _result(acc: RankingMetrics, ranks: list[torch.Tensor], return_ranks: bool) -> dict:
    out: dict = {"metrics": acc.result(), "n_predictions": acc.n}
    if return_ranks:
        out["ranks"] = torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)
    return out


@torch.no_grad()
def evaluate_sessions(
    model: SessionRecommender,
    test: Sessions,
    ks: Sequence[int] = (10, 20),
    chunk_events: int | None = None,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    return_ranks: bool = False,
) -> dict:
    """P1 / P4-sessions: every prefix i0..i(t-1) of every test session predicts i(t), t = 1..n-1.

    Whole sessions are scored together (``model.score_next`` gives one row per event); the row of a
    session's last event has no target and is dropped. A session longer than the chunk is scored
    alone.
    """
    n_items = _width(model, test.n_items)
    chunk = chunk_events or _rows_per_chunk(n_items, max_block_bytes)
    acc = RankingMetrics(ks=tuple(ks), n_items=n_items)
    ranks: list[torch.Tensor] = []
    offsets = test.offsets
    s = 0
    while s < test.n_sessions:
        # largest run of whole sessions starting at s whose events fit in the chunk (at least one)
        e = int(np.searchsorted(offsets, offsets[s] + chunk, side="right")) - 1
        e = min(max(e, s + 1), test.n_sessions)
        a, b = int(offsets[s]), int(offsets[e])
        sub = Sessions(
            items=test.items[a:b],
            offsets=offsets[s : e + 1] - a,
            n_items=n_items,
            times=None if test.times is None else test.times[a:b],
            session_ids=None if test.session_ids is None else test.session_ids[s:e],
        )
        keep = np.ones(b - a, dtype=bool)
        keep[sub.offsets[1:] - 1] = False  # last event of each session: nothing to predict
        if keep.any():
            scores = _fit_width(model.score_next(sub), n_items)
            rows = torch.from_numpy(np.flatnonzero(keep)).to(scores.device)
            targets = torch.from_numpy(sub.items[1:][keep[:-1]]).to(scores.device)
            ranks.append(acc.add(scores.index_select(0, rows), targets))
        s = e
    return _result(acc, ranks, return_ranks)


@torch.no_grad()
def evaluate_users(
    model: UserRecommender,
    targets: UserTargets,
    ks: Sequence[int] = (10, 20),
    chunk_users: int | None = None,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    return_ranks: bool = False,
) -> dict:
    """P2 / P4-users: each target ranked over all items minus its ``exclude`` row; input = ``history``."""
    n_items = _width(model, targets.exclude.shape[1])
    chunk = chunk_users or _rows_per_chunk(n_items, max_block_bytes)
    acc = RankingMetrics(ks=tuple(ks), n_items=n_items)
    ranks: list[torch.Tensor] = []
    for a in range(0, len(targets.users), chunk):
        b = min(a + chunk, len(targets.users))
        scores = _fit_width(model.score_users(targets.users[a:b], targets.history[a:b]), n_items)
        exclude = _exclude_block(targets.exclude, a, b, n_items, scores.device)
        tgt = torch.from_numpy(targets.targets[a:b]).to(scores.device)
        ranks.append(acc.add(scores, tgt, exclude))
    return _result(acc, ranks, return_ranks)


def take_sessions(sessions: Sessions, idx: np.ndarray) -> Sessions:
    """Sessions ``idx`` (any order, repeats allowed), vectorised."""
    return sessions.take(idx)


@torch.no_grad()
def evaluate_user_sequences(
    model: SessionRecommender,
    sequences: Sessions,
    targets: UserTargets,
    ks: Sequence[int] = (10, 20),
    max_block_bytes: int = MAX_BLOCK_BYTES,
    return_ranks: bool = False,
) -> dict:
    """P2 for session models: a user's history, in order, is one long session (PROTOCOLS.md P2).

    ``sequences`` row u is user u's input (train items for validation, train + valid for test); the
    scores after its last event rank the target, minus ``targets.exclude``. A model may offer
    ``score_last(sessions) -> [n_sessions, n_items]`` to skip the rows of earlier prefixes.
    """
    n_items = _width(model, targets.exclude.shape[1])
    chunk = _rows_per_chunk(n_items, max_block_bytes)
    acc = RankingMetrics(ks=tuple(ks), n_items=n_items)
    ranks: list[torch.Tensor] = []
    score_last = getattr(model, "score_last", None)
    lengths = sequences.lengths[targets.users]
    if (lengths == 0).any():
        raise ValueError("every evaluated user needs a non-empty input sequence")
    a = 0
    while a < len(targets.users):
        # users whose sequences fit in one block of rows (at least one user)
        b = a + max(1, int(np.searchsorted(np.cumsum(lengths[a:]), chunk, side="right")))
        b = min(b, len(targets.users))
        sub = take_sessions(sequences, targets.users[a:b])
        if score_last is not None:
            scores = score_last(sub)
        else:
            full = model.score_next(sub)
            scores = full.index_select(0, torch.from_numpy(sub.offsets[1:] - 1).to(full.device))
        scores = _fit_width(scores, n_items)
        exclude = _exclude_block(targets.exclude, a, b, n_items, scores.device)
        tgt = torch.from_numpy(targets.targets[a:b]).to(scores.device)
        ranks.append(acc.add(scores, tgt, exclude))
        a = b
    return _result(acc, ranks, return_ranks)


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def evaluate_similarity(
    idx: np.ndarray | torch.Tensor,
    score: np.ndarray | torch.Tensor,
    pairs_src: np.ndarray,
    pairs_tgt: np.ndarray,
    ks: Sequence[int] = (10, 20),
    chunk_pairs: int = 65536,
    return_ranks: bool = False,
) -> dict:
    """P3: rank of ``pairs_tgt`` among the similar items of ``pairs_src`` in a top-K table.

    ``idx`` / ``score`` are ``[n_items, K]`` (entries with ``idx < 0`` are padding). The rank is the
    target's position by score with conservative ties (1 + entries of the list scoring >= it). A
    target not in the list, or a source without a row, is a miss: the list is embedded in a row of
    width ``max(K, max(ks)) + 1`` padded with -inf, and a missing target points at a padding cell,
    whose conservative rank is the whole width, beyond every cutoff.
    """
    idx_np = _as_numpy(idx).astype(np.int64, copy=False)
    val_np = _as_numpy(score).astype(np.float32, copy=False)
    src = np.asarray(pairs_src, dtype=np.int64)
    tgt = np.asarray(pairs_tgt, dtype=np.int64)
    n_rows, k_list = idx_np.shape
    width = max(k_list, max(ks)) + 1
    acc = RankingMetrics(ks=tuple(ks))
    ranks: list[torch.Tensor] = []
    for a in range(0, len(src), chunk_pairs):
        s, t = src[a : a + chunk_pairs], tgt[a : a + chunk_pairs]
        has_row = (s >= 0) & (s < n_rows)
        rows_idx = np.full((len(s), k_list), -1, dtype=np.int64)
        rows_idx[has_row] = idx_np[s[has_row]]
        block = np.full((len(s), width), -np.inf, dtype=np.float32)
        block[:, :k_list] = np.where(rows_idx >= 0, val_np[np.where(has_row, s, 0)], -np.inf)
        match = (rows_idx == t[:, None]) & (rows_idx >= 0)
        found = match.any(axis=1)
        pos = np.where(found, match.argmax(axis=1), width - 1)
        ranks.append(acc.add(torch.from_numpy(block), torch.from_numpy(pos)))
    return _result(acc, ranks, return_ranks)


def session_pairs(sessions: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """P3 on rsc15: every consecutive (i(t-1), i(t)) pair inside a session."""
    keep = np.ones(max(len(sessions.items) - 1, 0), dtype=bool)
    keep[sessions.offsets[1:-1] - 1] = False  # pair across a session boundary
    return sessions.items[:-1][keep], sessions.items[1:][keep]


def user_last_train_pairs(train_sequences: Sessions, valid: UserTargets) -> tuple[np.ndarray, np.ndarray]:
    """P3's validation analogue on ml-100k: (user's last train item, user's validation item).

    The same question as ``user_last_pairs`` one step earlier, so a table's settings can be chosen
    without the test items."""
    lens = np.diff(train_sequences.offsets)
    has = lens[valid.users] > 0
    users = valid.users[has]
    return train_sequences.items[train_sequences.offsets[users + 1] - 1], valid.targets[has]


def user_last_pairs(valid: UserTargets, test: UserTargets) -> tuple[np.ndarray, np.ndarray]:
    """P3 on ml-100k: (user's validation item, user's test item) for every user present in both."""
    _, vi, ti = np.intersect1d(valid.users, test.users, return_indices=True)
    return valid.targets[vi], test.targets[ti]
