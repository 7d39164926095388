"""Shared by the session-model tests: a log with planted sequential structure and a quick metric."""

from __future__ import annotations

import numpy as np
import torch

from recmodels.data import Sessions
from recmodels.metrics import RankingMetrics


def planted_log(n_sessions: int, n_items: int, seed: int) -> Sessions:
    """Each item has one fixed successor (followed 85% of the time); session starts skewed to a few items."""
    succ = np.random.default_rng(12345).permutation(n_items)  # the structure is shared by train and test
    rng = np.random.default_rng(seed)
    start_p = 1.0 / np.arange(1, n_items + 1) ** 1.2
    start_p /= start_p.sum()
    lengths = rng.integers(2, 9, size=n_sessions)
    items = np.empty(lengths.sum(), dtype=np.int64)
    pos = 0
    for L in lengths:  # test-data generator, not model code
        cur = rng.choice(n_items, p=start_p)
        for _ in range(L):
            items[pos] = cur
            pos += 1
            cur = succ[cur] if rng.random() < 0.85 else rng.integers(n_items)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sessions(items=items, offsets=offsets, n_items=n_items)


def mrr_hr(scores: torch.Tensor, sessions: Sessions, k: int = 10) -> tuple[float, float]:
    keep = np.ones(len(sessions.items), dtype=bool)
    keep[sessions.offsets[1:] - 1] = False
    targets = torch.from_numpy(sessions.items[1:][keep[:-1]])
    acc = RankingMetrics(ks=(k,))
    acc.add(scores[torch.from_numpy(np.flatnonzero(keep))], targets)
    r = acc.result()
    return r[f"MRR@{k}"], r[f"HR@{k}"]
