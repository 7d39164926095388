"""S-POP (session popularity), as session-rec's ``baselines.spop.SessionPop``.

Score of item j after a prefix = (clicks on j in the prefix) + pop_j / (pop_j + 1), with pop_j the
item's training click count. The second term lies in [0, 1), so items of the current session come
first, ordered by how often they were clicked in it, and global popularity only breaks ties (and
ranks everything else). Left out: session-rec's ``support_by_key`` (count sessions instead of
clicks) and its ``topn`` cut-off of the popularity list, which only truncate the tail.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from recmodels.base import FitReport, SessionRecommender
from recmodels.baselines import event_session
from recmodels.data import Sessions


class SessionPopular(SessionRecommender):
    name = "spop"

    def __init__(self, config=None, device=None, seed: int = 0) -> None:
        super().__init__(config, device, seed)
        self.prior = torch.zeros(0)

    def fit(self, train: Sessions, valid: Sessions | None = None) -> FitReport:
        t0 = time.perf_counter()
        pop = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        self.n_items = len(pop)
        self.prior = torch.as_tensor(pop / (pop + 1.0), dtype=torch.float32, device=self.device)
        return FitReport(train_seconds=time.perf_counter() - t0, train_events=len(train.items))

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        n_ev = len(sessions.items)
        items = torch.as_tensor(sessions.items, device=self.device)
        known = items < self.n_items
        onehot = torch.zeros((n_ev, self.n_items), dtype=torch.float32, device=self.device)
        rows = torch.arange(n_ev, device=self.device)
        onehot[rows[known], items[known]] = 1.0
        # running counts over all events, minus the running count at the end of the previous session
        counts = torch.cumsum(onehot, dim=0)
        starts = torch.as_tensor(sessions.offsets[:-1], device=self.device)
        before = torch.zeros((sessions.n_sessions, self.n_items), dtype=torch.float32, device=self.device)
        has_prev = starts > 0
        before[has_prev] = counts[starts[has_prev] - 1]
        sess = torch.as_tensor(event_session(sessions), device=self.device)
        counts -= before[sess]
        return counts + self.prior

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        """Scores after each session's last click only, ``[n_sessions, n_items]``."""
        items = torch.as_tensor(sessions.items, device=self.device)
        sess = torch.as_tensor(event_session(sessions), device=self.device)
        known = items < self.n_items
        counts = torch.zeros((sessions.n_sessions, self.n_items), dtype=torch.float32, device=self.device)
        counts.index_put_(
            (sess[known], items[known]), torch.ones(int(known.sum()), device=self.device), accumulate=True
        )
        return counts + self.prior

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"prior": self.prior}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.prior = state["prior"].to(self.device)
        self.n_items = len(self.prior)
