"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

Implemented: the closed form of the paper's Algorithm 1: G = X^T X + lambda I, P = G^-1,
B_ij = -P_ij / P_jj and diag(B) = 0 (i.e. B = I - P diag(1/diag(P))); scores = X B on the binary
user x item matrix. Default ``l2 = 170``: chosen by ``clickrec tune --model ease --protocol P2`` (30 TPE
trials over lambda 1..5000, log scale, seed 0) on P2's validation targets only: valid NDCG@10 0.0681 at
169.7 against 0.0668 at the former default 500 (HR@10 0.1421 vs 0.1389); the figure is flat over
150..450 and falls off below 50 and above 1000 (0.0593 at 2000). The paper tunes lambda per data set,
so each source's nightly takes its own from ``<home>/tuned/<source>.toml``. Left out: nothing of the
model (the paper's Algorithm 1 is the whole method); the later EDLAE / dropout variants are not EASE.

EASE has no latent item vectors (``item_vectors()`` is None); its weight matrix row B[i] is a
natural item-to-item table, offered by :meth:`similar_items` for P3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.base import FitReport, UserRecommender
from recmodels.baselines import dense_rows
from recmodels.data import Interactions, UserTargets


@dataclass
class EASEConfig:
    l2: float = 170.0  # tuned on P2's validation split (see the module docstring)


class EASE(UserRecommender):
    name = "ease"

    def __init__(self, config: EASEConfig | dict | None = None, device=None, seed: int = 0) -> None:
        cfg = EASEConfig(**config) if isinstance(config, dict) else (config or EASEConfig())
        super().__init__(cfg, device, seed)
        self.B = torch.zeros(0, 0)

    def fit(self, train: Interactions, valid: UserTargets | None = None) -> FitReport:
        t0 = time.perf_counter()
        x = train.matrix.astype(np.float64)
        x.data[:] = 1.0
        self.n_items = x.shape[1]
        # float64 on CPU (cheap at this size, exact); float32 on GPU where fp64 is slow
        dtype = torch.float64 if self.device.type == "cpu" else torch.float32
        g = torch.as_tensor((x.T @ x).toarray(), dtype=dtype, device=self.device)
        g.diagonal().add_(self.config.l2)
        p = torch.linalg.inv(g)
        b = -p / p.diagonal()[None, :]
        b.diagonal().zero_()
        self.B = b.float()
        return FitReport(train_seconds=time.perf_counter() - t0, train_events=int(x.nnz))

    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        h = dense_rows((history != 0).astype(np.float32), self.device)
        return h @ self.B

    def similar_items(self, k: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
        """Per item i, the ``k`` items j with the largest weight B[i, j] (how much i votes for j)."""
        b = self.B.clone()
        b.fill_diagonal_(-float("inf"))  # diag(B) = 0 would otherwise list an item as its own neighbour
        val, idx = torch.topk(b, min(k, self.n_items - 1), dim=1)
        return idx, val

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"B": self.B}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.B = state["B"].to(self.device)
        self.n_items = self.B.shape[0]
