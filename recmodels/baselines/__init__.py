"""Strong non-neural baselines (pop, S-POP, item-kNN, V-SkNN, EASE) and the index helpers they share.

All helpers are vectorised over events: a batch of sessions becomes flat ``(row, ...)`` arrays, one
row per event (= one prefix), matching ``SessionRecommender.score_next``'s row layout.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.data import Sessions


def event_session(sessions: Sessions) -> np.ndarray:
    """Session number of every event."""
    return np.repeat(np.arange(sessions.n_sessions, dtype=np.int64), sessions.lengths)


def event_position(sessions: Sessions) -> np.ndarray:
    """0-based position of every event inside its session."""
    return np.arange(len(sessions.items), dtype=np.int64) - np.repeat(sessions.offsets[:-1], sessions.lengths)


def prefix_pairs(sessions: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """All (row, event) pairs with event in row's prefix: row r = event r, prefix = its session up to r.

    Returns ``(rows, events)`` where ``events`` index ``sessions.items``; within a row, events are in
    session order. Size is sum over sessions of L(L+1)/2.
    """
    pos = event_position(sessions)
    n_pre = pos + 1
    rows = np.repeat(np.arange(len(sessions.items), dtype=np.int64), n_pre)
    starts = np.repeat(np.cumsum(n_pre) - n_pre, n_pre)
    session_start = np.repeat(sessions.offsets[:-1], sessions.lengths)
    events = np.repeat(session_start, n_pre) + (np.arange(len(rows), dtype=np.int64) - starts)
    return rows, events


def session_item_matrix(sessions: Sessions, n_items: int, binary: bool = True) -> sp.csr_matrix:
    """Sessions x items CSR (click counts, or 1 for 'the session contains the item')."""
    known = sessions.items < n_items
    m = sp.csr_matrix(
        (
            np.ones(int(known.sum()), dtype=np.float64),
            (event_session(sessions)[known], sessions.items[known]),
        ),
        shape=(sessions.n_sessions, n_items),
    )
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


def topk_rows(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest stored entries of a CSR matrix, sorted descending (ties: lower index).

    Returns ``(idx [n_rows, k], score [n_rows, k])`` padded with -1 / -inf where a row has fewer entries.
    """
    m = matrix.tocsr()
    m.sum_duplicates()
    n_rows = m.shape[0]
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(len(order), dtype=np.int64) - np.repeat(m.indptr[:-1], counts)
    keep = rank < k
    sel = order[keep]
    idx = np.full((n_rows, k), -1, dtype=np.int64)
    val = np.full((n_rows, k), -np.inf, dtype=np.float32)
    idx[rows[keep], rank[keep]] = m.indices[sel]
    val[rows[keep], rank[keep]] = m.data[sel]
    return idx, val


def dense_rows(matrix: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A (small) CSR block as a dense float32 tensor on ``device``."""
    return torch.from_numpy(np.asarray(matrix.toarray(), dtype=np.float32)).to(device)


def sparse_state(name: str, matrix: sp.csr_matrix) -> dict[str, torch.Tensor]:
    """A CSR matrix as plain tensors (checkpoints hold tensors only)."""
    m = matrix.tocsr()
    return {
        f"{name}_indptr": torch.from_numpy(m.indptr.astype(np.int64)),
        f"{name}_indices": torch.from_numpy(m.indices.astype(np.int64)),
        f"{name}_data": torch.from_numpy(m.data.astype(np.float32)),
        f"{name}_shape": torch.tensor(m.shape, dtype=torch.int64),
    }


def sparse_from_state(name: str, state: dict[str, torch.Tensor]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in state[f"{name}_shape"])
    return sp.csr_matrix(
        (state[f"{name}_data"].numpy(), state[f"{name}_indices"].numpy(), state[f"{name}_indptr"].numpy()),
        shape=shape,
    )
