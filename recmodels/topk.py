"""Chunked top-K recommendation lists for publishing: bounded memory whatever the catalogue size."""

from __future__ import annotations

import numpy as np
import torch

from recmodels.base import SessionRecommender
from recmodels.data import Sessions

MAX_BLOCK_BYTES = 256 * 1024**2


def session_topk(
    model: SessionRecommender, sessions: Sessions, k: int = 20, max_block_bytes: int = MAX_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Next-item top-``k`` after each session's last event: ``(item_idx [n, k], score [n, k])``.

    Sessions are scored in chunks of whole sessions so one ``chunk x n_items`` block stays under
    ``max_block_bytes``. Repeat items stay candidates (repeat clicks are real, as in P1).
    """
    n = sessions.n_sessions
    n_items = max(int(getattr(model, "n_items", 0) or 0), sessions.n_items, 1)
    kk = min(k, n_items)
    out_idx = np.empty((n, kk), dtype=np.int64)
    out_val = np.empty((n, kk), dtype=np.float32)
    chunk = max(1, max_block_bytes // (4 * n_items))
    with torch.no_grad():
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            part = sessions.take(np.arange(a, b))
            scores = torch.nan_to_num(model.score_last(part).float(), nan=-float("inf"))
            val, idx = torch.topk(scores, min(kk, scores.shape[1]), dim=1)
            out_idx[a:b, : idx.shape[1]] = idx.cpu().numpy()
            out_val[a:b, : idx.shape[1]] = val.cpu().numpy()
    return out_idx, out_val
