"""In-memory training data the models read: plain numpy / scipy containers, built by tasks/ from DuckDB.

Every model family consumes one of two shapes:
- ``Sessions``: events grouped by session (session-based models, P1/P4 session protocol);
- ``Interactions``: a user x item CSR matrix (user models, P2/P4 user protocol).
Item indices are the warehouse's stable ``item_idx`` (0-based, dense, never reassigned).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Sessions:
    """Events of many sessions, concatenated; session s is ``items[offsets[s]:offsets[s+1]]`` in time order."""

    items: np.ndarray  # int64 item_idx per event
    offsets: np.ndarray  # int64, len n_sessions + 1, offsets[0] == 0, offsets[-1] == len(items)
    n_items: int  # size of the item vocabulary (max item_idx + 1 at least)
    times: np.ndarray | None = None  # float64 Unix seconds per event (recency weighting), optional
    session_ids: np.ndarray | None = None  # original ids, carried for publishing, optional

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise ValueError("offsets must be 1-D and start at 0")
        if self.offsets[-1] != len(self.items):
            raise ValueError(f"offsets end at {self.offsets[-1]} but there are {len(self.items)} events")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError("item index out of vocabulary range")

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, idx: np.ndarray) -> Sessions:
        """Sessions ``idx`` (any order, repeats allowed), vectorised."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ev = np.repeat(self.offsets[idx] - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return Sessions(
            items=self.items[ev],
            offsets=offsets,
            n_items=self.n_items,
            times=None if self.times is None else self.times[ev],
            session_ids=None if self.session_ids is None else self.session_ids[idx],
        )

    def subset(self, mask: np.ndarray) -> Sessions:
        """Sessions selected by a boolean mask over sessions."""
        return self.take(np.flatnonzero(mask))


@dataclass(frozen=True)
class Interactions:
    """User x item matrix (CSR, float32; 1.0 for binary, counts or decayed weights otherwise)."""

    matrix: sp.csr_matrix
    sequences: Sessions | None = None  # per-user ordered history (row u = session u), for sequence models

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]


@dataclass(frozen=True)
class UserTargets:
    """One held-out target per evaluated user, ranked over all items minus ``exclude``'s row.

    ``history`` is what the model may read as input for those users (rows aligned with ``users``).
    """

    users: np.ndarray  # int64 user_idx, one per prediction
    targets: np.ndarray  # int64 item_idx, one per prediction
    history: sp.csr_matrix  # len(users) x n_items, model input
    exclude: sp.csr_matrix  # len(users) x n_items, items removed from the ranking
