"""Neural Collaborative Filtering: GMF, MLP and NeuMF (pure PyTorch).

He, Liao, Zhang, Nie, Hu, Chua, "Neural Collaborative Filtering", WWW 2017.

Implemented (paper features):
- GMF: element-wise product of user and item embeddings, then a learned output layer h (eq. 9);
- MLP: concatenated user / item embeddings through a tower of ReLU layers halving in width
  (default 64-32-16-8: the first number is the concatenated embedding width), then h (eq. 10);
- NeuMF: GMF and MLP with *separate* embeddings, their last layers concatenated into h (eq. 11-12);
- pointwise log loss (eq. 7) with ``num_neg`` (4) uniformly sampled unobserved items per positive,
  redrawn every epoch (vectorised rejection of observed items, like the authors' resampling);
  optional pairwise BPR loss (``loss="bpr"``) over the same negatives;
- pre-training (``pretrain=True``): GMF and MLP trained first (Adam), NeuMF initialised from both
  with the output layer h = [alpha * h_GMF, (1 - alpha) * h_MLP] (alpha = 0.5), then fine-tuned with
  vanilla SGD (the paper: Adam's momentum state is not available after pre-training). A warm start
  skips the pre-training (yesterday's NeuMF was pre-trained already) and fine-tunes from the
  checkpoint; the refit after early stopping (``refit_params``) puts the fine-tuning phase's best
  epoch into ``finetune_epochs`` and the pre-training's own best epoch count into ``epochs``;
- N(0, 0.01) embedding initialisation, Glorot tower, LeCun-uniform output layer (authors' code).
Left out: the paper's sampled evaluation (1 positive + 100 negatives; the project ranks all items);
L2 regularisation is available (``weight_decay``) but, as in the paper's runs, off by default;
``dropout`` on the tower is an extension (RecBole has it), 0 by default.

Full-ranking scoring is done without materialising user x item pairs for the GMF part (a matmul)
and by splitting the MLP's first layer into a user part and an item part, so each user block costs
one broadcast add instead of an embedding gather per (user, item) pair.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recmodels.base import FitReport
from recmodels.data import Interactions, UserTargets
from recmodels.trainer import Progress, Trainer
from recmodels.user_training import PositiveSet, TorchUserModel, sample_negatives


def bpr_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """BPR (Rendle et al. 2009): -mean log sigma(y_ui - y_uj) over (positive, negative) pairs."""
    return -F.logsigmoid(pos_logits.float() - neg_logits.float()).mean()


def relu_dropout_multiplier(z: torch.Tensor, p: float) -> torch.Tensor:
    """ReLU and inverted dropout as one multiplier: ``relu(dropout(z)) = z * m``, m in {0, 1/(1-p)}.

    The keep test compares 32-bit uniform integers with ``round(p * 2**32)`` (p exact to 2**-32),
    drawn 64 bits at a time from torch's generator. On CPU ``bernoulli_`` was a fifth of a NeuMF step
    at RecBole's settings (dropout 0.1); this made the epoch about 1.1x faster (A/B in one process).
    """
    positive = z > 0
    if p <= 0:
        return positive.to(z.dtype)
    n = z.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=z.device).random_(-(2**63), None)
    keep = bits.view(torch.int32)[:n].view(z.shape) >= round(p * 2**32) - 2**31
    return (keep & positive).to(z.dtype).mul_(1.0 / (1.0 - p))


@dataclass
class NCFConfig:
    gmf_dim: int = 32  # GMF predictive factors
    mlp_layers: tuple[int, ...] = (64, 32, 16, 8)  # first = concatenated embedding width (user + item)
    num_neg: int = 4
    loss: str = "log"  # "log" (the paper's pointwise log loss) or "bpr"
    lr: float = 2e-3
    batch_size: int = 4096
    epochs: int = 60
    patience: int | None = 8  # evaluations without a new best before stopping; None: no early stopping
    eval_every: int = 1
    valid_metric: str = "NDCG@10"
    weight_decay: float = 0.0
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16: recmodels.device.autocast
    dropout: float = 0.0  # on the MLP tower (extension; the paper has none)
    # NeuMF pre-training (ignored by GMF / MLP)
    pretrain: bool = False
    alpha: float = 0.5
    finetune_lr: float = 0.05  # vanilla SGD after pre-training
    finetune_epochs: int = 20


class _NCFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, cfg: NCFConfig, use_gmf: bool, use_mlp: bool) -> None:
        super().__init__()
        self.use_gmf, self.use_mlp, self.dropout = use_gmf, use_mlp, cfg.dropout
        out_dim = 0
        if use_gmf:
            self.gmf_user = nn.Embedding(n_users, cfg.gmf_dim)
            self.gmf_item = nn.Embedding(n_items, cfg.gmf_dim)
            out_dim += cfg.gmf_dim
        if use_mlp:
            layers = tuple(cfg.mlp_layers)
            if layers[0] % 2:
                raise ValueError("mlp_layers[0] is the concatenated user+item embedding width: it must be even")
            self.mlp_user = nn.Embedding(n_users, layers[0] // 2)
            self.mlp_item = nn.Embedding(n_items, layers[0] // 2)
            self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:], strict=True))
            out_dim += layers[-1]
            for lin in self.tower:
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
        self.out = nn.Linear(out_dim, 1)
        nn.init.kaiming_uniform_(self.out.weight, a=1.0)  # = LeCun uniform
        nn.init.zeros_(self.out.bias)
        for m in self.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.01)

    def _tower_from(self, z: torch.Tensor) -> torch.Tensor:
        """Tower after the first layer's pre-activation ``z``."""
        for k, lin in enumerate(self.tower):
            if k:
                z = lin(z)
            if self.training and self.dropout and k < len(self.tower) - 1:  # every hidden layer but the last
                z = z * relu_dropout_multiplier(z, self.dropout)
            else:
                z = F.relu(z)
        return z

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # index_select rather than nn.Embedding's forward: its backward is an index_add, several
        # times faster on CPU than embedding's sort-based dense backward. The concatenations of the
        # paper (MLP input, NeuMF's last layer) are written as sums of split matmuls: same maths,
        # no copies.
        w = self.out.weight[0]
        y = self.out.bias
        off = 0
        if self.use_gmf:
            g = self.gmf_user.weight.index_select(0, users) * self.gmf_item.weight.index_select(0, items)
            off = g.shape[1]
            y = y + g @ w[:off]
        if self.use_mlp:
            first, h = self.tower[0], self.mlp_user.embedding_dim
            z = F.linear(self.mlp_user.weight.index_select(0, users), first.weight[:, :h], first.bias)
            z = z + F.linear(self.mlp_item.weight.index_select(0, items), first.weight[:, h:])
            y = y + self._tower_from(z) @ w[off:]
        return y

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, n_items]`` logits of every item for a block of users."""
        w = self.out.weight[0]
        scores = self.out.bias.expand(len(users), 1)
        off = 0
        if self.use_gmf:
            d = self.gmf_user.embedding_dim
            # sum_k h_k p_uk q_ik = (p_u * h) . q_i : one matmul for all items
            scores = scores + (self.gmf_user(users) * w[:d]) @ self.gmf_item.weight.T
            off = d
        if self.use_mlp:
            first = self.tower[0]
            h = self.mlp_user.embedding_dim
            # W1 [u; i] + b = (W1[:, :h] u + b) + W1[:, h:] i : user part + item part, broadcast
            zu = F.linear(self.mlp_user(users), first.weight[:, :h], first.bias)
            zi = F.linear(self.mlp_item.weight, first.weight[:, h:])
            top = self._tower_from(zu[:, None, :] + zi[None, :, :])
            scores = scores + top @ w[off:]
        return scores


class _NCFBase(TorchUserModel):
    config_cls = NCFConfig
    use_gmf: bool = True
    use_mlp: bool = True
    needs_history = False
    item_row_keys = ("gmf_item.weight", "mlp_item.weight")
    user_row_keys = ("gmf_user.weight", "mlp_user.weight")
    score_chunk_elems = 1 << 24

    def _build(self, n_users: int, n_items: int) -> nn.Module:
        if self.config.loss not in ("log", "bpr"):
            raise ValueError(f"NCF loss must be 'log' or 'bpr', not {self.config.loss!r}")
        return _NCFNet(n_users, n_items, self.config, self.use_gmf, self.use_mlp)

    def _score_width(self) -> int:
        return max(self.config.mlp_layers) if self.use_mlp else 1

    def _prepare(self, train: Interactions) -> None:
        assert self._train is not None
        t = self._train
        self._pos_u = torch.repeat_interleave(torch.arange(t.shape[0], device=self.device), t.row_lengths())
        self._pos_i = t.indices
        self._positives = PositiveSet(t)

    def _epoch_batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        c = self.config
        neg_u = self._pos_u.repeat(c.num_neg)
        neg_i = sample_negatives(neg_u, self.n_items, self._positives, generator)  # afresh every epoch
        if c.loss == "bpr":
            cols = (neg_u, self._pos_i.repeat(c.num_neg), neg_i)
        else:
            n_pos = len(self._pos_u)
            labels = torch.zeros(n_pos + len(neg_u), device=self.device)
            labels[:n_pos] = 1.0
            cols = (torch.cat([self._pos_u, neg_u]), torch.cat([self._pos_i, neg_i]), labels)
        # shuffle once per epoch, then hand out contiguous slices (views, no per-step gathers)
        perm = torch.randperm(len(cols[0]), generator=generator).to(self.device)
        cols = tuple(col[perm] for col in cols)
        for start in range(0, len(perm), c.batch_size):
            yield tuple(col[start : start + c.batch_size] for col in cols)

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.config.loss == "bpr":
            u, i, j = batch
            return bpr_loss(self.module(u, i), self.module(u, j))
        u, i, y = batch
        return F.binary_cross_entropy_with_logits(self.module(u, i).float(), y)

    def _score(self, users: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(device_type=users.device.type, enabled=False):  # fp32 scores: bf16 ties
            return self.module.score_all(users)

    def item_vectors(self) -> torch.Tensor:
        parts = []
        if self.use_gmf:
            parts.append(self.module.gmf_item.weight.detach())
        if self.use_mlp:
            parts.append(self.module.mlp_item.weight.detach())
        return torch.cat(parts, dim=1)


class GMF(_NCFBase):
    """Generalized Matrix Factorization (NCF, eq. 9)."""

    name = "gmf"
    use_gmf, use_mlp = True, False


class MLP(_NCFBase):
    """NCF's multi-layer perceptron (eq. 10)."""

    name = "mlp"
    use_gmf, use_mlp = False, True


class NeuMF(_NCFBase):
    """Neural Matrix Factorization (eq. 11-12), optionally initialised from pre-trained GMF and MLP."""

    name = "neumf"

    def __init__(self, config: Any = None, device: str | torch.device | None = None, seed: int = 0) -> None:
        super().__init__(config, device, seed)
        self._pretrained: tuple[nn.Module, nn.Module] | None = None  # GMF, MLP: the fine-tuning's start
        self._pretrain_best = (0, 0)

    def fit(
        self,
        train: Interactions,
        valid: UserTargets | None = None,
        *,
        progress: Progress | None = None,
        warm_from: str | Path | None = None,
    ) -> FitReport:
        """Without pre-training: the one Trainer over NeuMF. With it: GMF and MLP trained first, then
        the fine-tuning phase (``finetune_epochs``, SGD) judged from the pre-trained start (epoch 0),
        so it can only help. A warm start skips the pre-training (yesterday's NeuMF had it)."""
        c = self.config
        if not c.pretrain:
            return super().fit(train, valid, progress=progress, warm_from=warm_from)
        t0 = time.perf_counter()
        rep_g, rep_m = FitReport(), FitReport()
        if warm_from is None:
            sub = replace(c, pretrain=False)
            gmf, mlp = GMF(sub, self.device, self.seed), MLP(sub, self.device, self.seed + 1)
            phase = None if progress is None else (lambda p: progress(replace(p, model=f"{self.name}:{p.model}")))
            rep_g, rep_m = gmf.fit(train, valid, progress=phase), mlp.fit(train, valid, progress=phase)
            self._pretrained = (gmf.module, mlp.module)
        self._pretrain_best = (rep_g.best_epoch or rep_g.epochs, rep_m.best_epoch or rep_m.epochs)
        finetune = Trainer(c.finetune_epochs, c.patience, c.eval_every, eval_at_start=True, progress=progress)
        try:
            report = finetune.fit(self, train, valid, warm_from)
        finally:
            self._pretrained = None
        report.train_events += rep_g.train_events + rep_m.train_events
        report.train_seconds = time.perf_counter() - t0
        report.history = (
            [{"phase_gmf": 1.0, **r} for r in rep_g.history]
            + [{"phase_mlp": 1.0, **r} for r in rep_m.history]
            + report.history
        )
        report.valid_metrics = {
            **report.valid_metrics,
            "pretrain_gmf_" + c.valid_metric: rep_g.valid_metrics.get(c.valid_metric, float("nan")),
            "pretrain_mlp_" + c.valid_metric: rep_m.valid_metrics.get(c.valid_metric, float("nan")),
        }
        return report

    def begin_fit(self, train: Interactions, warm_from: Path | None) -> None:
        super().begin_fit(train, warm_from)
        if self._pretrained is not None:
            self._init_from(*self._pretrained, self.config.alpha)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if not c.pretrain:
            return super()._make_optimizer()
        # vanilla SGD after pre-training (the paper: Adam's momentum state is not available then)
        return torch.optim.SGD(self.module.parameters(), lr=c.finetune_lr, weight_decay=c.weight_decay, fused=True)

    def refit_params(self, params: dict[str, Any], best_epoch: int) -> dict[str, Any] | None:
        """The refit's settings after early stopping. With pre-training, ``best_epoch`` is the
        fine-tuning phase's: it goes to ``finetune_epochs``, while ``epochs`` (the GMF / MLP pre-training
        budget) takes the pre-training's own best epoch count (the later of GMF's and MLP's); no early
        stopping. Without pre-training: the generic rule (``epochs`` = ``best_epoch``)."""
        if not self.config.pretrain:
            return super().refit_params(params, best_epoch)
        g, m = self._pretrain_best
        out = {**params, "finetune_epochs": int(best_epoch), "patience": None}
        if max(g, m) > 0:
            out["epochs"] = int(max(g, m))
        return out

    @torch.no_grad()
    def _init_from(self, gmf: nn.Module, mlp: nn.Module, alpha: float) -> None:
        m = self.module
        m.gmf_user.weight.copy_(gmf.gmf_user.weight)
        m.gmf_item.weight.copy_(gmf.gmf_item.weight)
        m.mlp_user.weight.copy_(mlp.mlp_user.weight)
        m.mlp_item.weight.copy_(mlp.mlp_item.weight)
        m.tower.load_state_dict(mlp.tower.state_dict())
        m.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], dim=1))
        m.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)

