"""MostPopular: one global ranking by training frequency (session-rec's ``baselines.pop.Pop``).

One class serves both protocols: fitted on ``Sessions`` it counts clicks (session-rec's default,
``support_by_key=None``); fitted on ``Interactions`` it counts users per item (column sums of the
binary matrix). session-rec's division by the maximum is left out: it does not change a ranking.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.base import FitReport, SessionRecommender, UserRecommender
from recmodels.data import Interactions, Sessions, UserTargets


class MostPopular(SessionRecommender, UserRecommender):
    name = "pop"

    def __init__(self, config=None, device=None, seed: int = 0) -> None:
        super().__init__(config, device, seed)
        self.counts = torch.zeros(0)

    def fit(self, train: Sessions | Interactions, valid: Sessions | UserTargets | None = None) -> FitReport:
        t0 = time.perf_counter()
        if isinstance(train, Sessions):
            counts = np.bincount(train.items, minlength=train.n_items)
            n_events = len(train.items)
        else:
            counts = np.asarray(train.matrix.sum(axis=0)).ravel()
            n_events = train.matrix.nnz
        self.n_items = len(counts)
        self.counts = torch.as_tensor(counts, dtype=torch.float32, device=self.device)
        return FitReport(train_seconds=time.perf_counter() - t0, train_events=int(n_events))

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        return self.counts.expand(len(sessions.items), -1)

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        return self.counts.expand(sessions.n_sessions, -1)

    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return self.counts.expand(len(users), -1)

    def similar_items(self, k: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
        """Item-to-item table of the popularity baseline: the top-``k`` popular items other than itself."""
        kk = min(k, self.n_items - 1)
        val, idx = torch.topk(self.counts, kk + 1)
        idx_all = idx.expand(self.n_items, -1)
        val_all = val.expand(self.n_items, -1)
        keep = idx_all != torch.arange(self.n_items, device=idx.device)[:, None]
        # every row drops its own entry if present, otherwise the (kk+1)-th one
        keep[keep.sum(dim=1) > kk, kk] = False
        return idx_all[keep].view(self.n_items, kk), val_all[keep].view(self.n_items, kk)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.counts = state["counts"].to(self.device)
        self.n_items = len(self.counts)
