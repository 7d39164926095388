"""Full-ranking metrics with conservative ties (PROTOCOLS.md), batched on torch.

rank(target) = 1 + #{other candidates with score >= target's score}. Excluded candidates are set to
-inf *and* never counted; a NaN score counts as the worst possible score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Conservative 1-based ranks of ``targets`` in each row of ``scores`` ``[B, N]``.

    ``exclude`` is a bool mask ``[B, N]`` of candidates removed from the ranking (seen items); the
    target itself is never excluded. Works in float32 regardless of the scores' dtype.
    """
    s = scores.float()
    s = torch.nan_to_num(s, nan=-math.inf)
    rows = torch.arange(s.shape[0], device=s.device)
    t = s[rows, targets]
    ge = s >= t[:, None]
    if exclude is not None:
        ex = exclude.clone()
        ex[rows, targets] = False
        ge &= ~ex
    # ge counts the target itself once, so its sum already equals 1 + #others >= target.
    return ge.sum(dim=1)


@dataclass
class RankingMetrics:
    """Streaming accumulator of HR@K, MRR@K, NDCG@K and item coverage@K over many prediction batches."""

    ks: tuple[int, ...] = (10, 20)
    n_items: int = 0
    n: int = 0
    _hr: dict[int, float] = field(default_factory=dict)
    _mrr: dict[int, float] = field(default_factory=dict)
    _ndcg: dict[int, float] = field(default_factory=dict)
    _covered: dict[int, torch.Tensor] = field(default_factory=dict)

    def add(self, scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """Accumulate a batch; returns its ranks (on CPU, int64)."""
        ranks = target_ranks(scores, targets, exclude)
        r = ranks.double()
        kmax = max(self.ks)
        if self.n_items:
            s = torch.nan_to_num(scores.float(), nan=-math.inf)
            if exclude is not None:
                s = s.masked_fill(exclude, -math.inf)
            top = torch.topk(s, min(kmax, s.shape[1]), dim=1).indices
        for k in self.ks:
            hit = r <= k
            self._hr[k] = self._hr.get(k, 0.0) + float(hit.sum())
            self._mrr[k] = self._mrr.get(k, 0.0) + float(torch.where(hit, 1.0 / r, 0.0).sum())
            self._ndcg[k] = self._ndcg.get(k, 0.0) + float(torch.where(hit, 1.0 / torch.log2(r + 1.0), 0.0).sum())
            if self.n_items:
                cov = self._covered.setdefault(k, torch.zeros(self.n_items, dtype=torch.bool))
                cov[top[:, :k].reshape(-1).cpu()] = True
        self.n += len(ranks)
        return ranks.cpu()

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        n = max(self.n, 1)
        for k in self.ks:
            out[f"HR@{k}"] = self._hr.get(k, 0.0) / n
            out[f"MRR@{k}"] = self._mrr.get(k, 0.0) / n
            out[f"NDCG@{k}"] = self._ndcg.get(k, 0.0) / n
            if self.n_items:
                out[f"COV@{k}"] = float(self._covered[k].sum()) / self.n_items if k in self._covered else 0.0
        return out
