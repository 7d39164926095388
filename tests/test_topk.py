"""Chunked next-item lists for publishing: the same lists as one brute-force top-k, however chunked."""

from __future__ import annotations

import numpy as np
import torch

from recmodels.base import SessionRecommender
from recmodels.data import Sessions
from recmodels.topk import session_topk


class LastItemShift(SessionRecommender):
    """Scores depend on the session's last item only: a known answer for every session."""

    name = "shift"

    def __init__(self, table: np.ndarray) -> None:
        super().__init__(device="cpu")
        self.table = torch.as_tensor(table)
        self.n_items = table.shape[1]

    def fit(self, train, valid=None):
        raise AssertionError("a fixed-score test double is never trained")

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        return self.table[torch.as_tensor(sessions.items)]


def test_session_topk_matches_brute_force_across_chunk_sizes():
    rng = np.random.default_rng(0)
    n_items = 37
    table = rng.standard_normal((n_items, n_items)).astype(np.float32)
    lengths = rng.integers(1, 6, size=50)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = rng.integers(0, n_items, size=offsets[-1]).astype(np.int64)
    sessions = Sessions(items, offsets, n_items, session_ids=np.arange(50).astype(str))
    last = items[offsets[1:] - 1]
    expected = np.argsort(-table[last], axis=1, kind="stable")[:, :5]
    for block in (4 * n_items, 4 * n_items * 7, 1 << 20):  # 1 session per chunk, 7, all at once
        idx, val = session_topk(LastItemShift(table), sessions, k=5, max_block_bytes=block)
        assert np.array_equal(idx, expected)
        assert np.allclose(val, np.take_along_axis(table[last], expected, axis=1))
