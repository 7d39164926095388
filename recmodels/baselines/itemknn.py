"""Item-kNN for sessions, as session-rec's ``knn.iknn.ItemKNN`` (Hidasi et al. 2016's item-kNN baseline).

Implemented: co-occurrence counted over click events, C = X^T X with X the sessions x items click
count matrix (session-rec adds 1 per pair of events of a session); regularised cosine
sim(i, j) = C_ij / ((supp_i + lambda)^alpha * (supp_j + lambda)^(1 - alpha)) with supp = item click
counts, defaults ``n_sims=100, lmbd=20, alpha=0.5``; an item is not its own neighbour; only each
item's ``n_sims`` best neighbours are kept. The next-item scores of a prefix are the similarity row
of its *last* item (the model has no memory of earlier clicks, as in the paper's baseline).
Left out: session-rec's final division by the row maximum (rank-neutral).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.base import FitReport, SessionRecommender
from recmodels.baselines import dense_rows, session_item_matrix, sparse_from_state, sparse_state, topk_rows
from recmodels.data import Sessions


@dataclass
class ItemKNNConfig:
    n_sims: int = 100
    lmbd: float = 20.0
    alpha: float = 0.5


class ItemKNN(SessionRecommender):
    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | dict | None = None, device=None, seed: int = 0) -> None:
        cfg = ItemKNNConfig(**config) if isinstance(config, dict) else (config or ItemKNNConfig())
        super().__init__(cfg, device, seed)
        self.sims = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, train: Sessions, valid: Sessions | None = None) -> FitReport:
        t0 = time.perf_counter()
        cfg = self.config
        self.n_items = train.n_items
        x = session_item_matrix(train, self.n_items, binary=False)
        cooc = (x.T @ x).tocsr()
        cooc.setdiag(0.0)
        cooc.eliminate_zeros()
        supp = np.asarray(x.sum(axis=0)).ravel()
        left = np.power(supp + cfg.lmbd, cfg.alpha)
        right = np.power(supp + cfg.lmbd, 1.0 - cfg.alpha)
        sims = sp.diags(1.0 / left) @ cooc @ sp.diags(1.0 / right)
        idx, val = topk_rows(sims.tocsr(), cfg.n_sims)
        keep = idx >= 0
        rows = np.repeat(np.arange(self.n_items), keep.sum(axis=1))
        self.sims = sp.csr_matrix(
            (val[keep], (rows, idx[keep])), shape=(self.n_items, self.n_items), dtype=np.float32
        )
        return FitReport(train_seconds=time.perf_counter() - t0, train_events=len(train.items))

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        items = sessions.items
        known = items < self.n_items
        out = dense_rows(self.sims[np.where(known, items, 0)], self.device)
        if not known.all():
            out[torch.from_numpy(~known).to(self.device)] = 0.0
        return out

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        """Scores after each session's last click only, ``[n_sessions, n_items]``."""
        last = Sessions(
            items=sessions.items[sessions.offsets[1:] - 1],
            offsets=np.arange(sessions.n_sessions + 1),
            n_items=sessions.n_items,
        )
        return self.score_next(last)

    def similar_items(self, k: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` neighbours per item (``k`` is capped by ``n_sims``; padding -1 / -inf)."""
        return topk_rows(self.sims, min(k, self.config.n_sims))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return sparse_state("sims", self.sims)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.sims = sparse_from_state("sims", state)
        self.n_items = self.sims.shape[0]
