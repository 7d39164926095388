"""Shared machinery of the trained user models (NCF, autoencoders): sparse->dense batching on the
device, vectorised negative sampling, chunked scoring and top-N, and their ``TrainedModel`` hooks.

Everything here is pure torch/numpy/scipy. ``TorchUserModel`` is the base class of every trained
user model: a subclass supplies ``_build`` (the nn.Module), ``_epoch_batches`` (this epoch's
vectorised samples) and ``_loss``; the training step, validation, checkpoints and growth into a
larger vocabulary are written once here, and ``recmodels.trainer.Trainer`` runs the epochs.
"""

from __future__ import annotations

import itertools
import math
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recmodels.base import Step, TrainedModel, UserRecommender
from recmodels.data import Interactions, UserTargets
from recmodels.device import autocast, seed_everything
from recmodels.metrics import RankingMetrics

# --------------------------------------------------------------------------------------------------
# sparse matrices on the device
# --------------------------------------------------------------------------------------------------


@dataclass
class SparseRows:
    """A batch of sparse rows on the device: entry ``e`` is (``rows[e]``, ``cols[e]``) = ``vals[e]``, row-major.

    Autoencoder inputs stay in this form: the first layer is an embedding bag over the stored
    entries (cost nnz x width instead of batch x n_items x width), and the multinomial likelihood
    gathers the log-softmax at the stored entries only.
    """

    rows: torch.Tensor  # int64 local row (0..n_rows-1) of each entry, non-decreasing
    cols: torch.Tensor  # int64 column of each entry
    vals: torch.Tensor  # float32 value of each entry
    offsets: torch.Tensor  # int64 [n_rows] first entry of each row (embedding_bag offsets)
    n_rows: int
    n_cols: int

    def lengths(self) -> torch.Tensor:
        return torch.bincount(self.rows, minlength=self.n_rows)

    def with_vals(self, vals: torch.Tensor) -> SparseRows:
        return replace(self, vals=vals)

    def dense(self) -> torch.Tensor:
        out = torch.zeros((self.n_rows, self.n_cols), device=self.vals.device)
        out[self.rows, self.cols] = self.vals
        return out

    def l2_normalized(self) -> SparseRows:
        """Rows scaled to unit L2 norm (Liang et al.'s input normalisation); empty rows stay empty."""
        sq = torch.zeros(self.n_rows, device=self.vals.device).index_add_(0, self.rows, self.vals.float() ** 2)
        return self.with_vals(self.vals / sq.sqrt().clamp_min(1e-12)[self.rows])


class DeviceCSR:
    """A CSR matrix held as torch tensors on the training device, densified a batch of rows at a time.

    Keeping the whole (small) index structure on the device means a batch costs one gather and one
    scatter there, instead of a scipy slice + host->device copy of a dense block every step.
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device) -> None:
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sort_indices()
        self.shape = m.shape
        self.device = device
        self.indptr = torch.from_numpy(m.indptr.astype(np.int64)).to(device)
        self.indices = torch.from_numpy(m.indices.astype(np.int64)).to(device)
        self.data = torch.from_numpy(m.data).to(device)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    def row_lengths(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def sparse_rows(self, rows: torch.Tensor, n_cols: int | None = None) -> SparseRows:
        """The selected rows as ``SparseRows`` (vectorised: two repeat_interleaves and a gather)."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        local = torch.repeat_interleave(torch.arange(len(rows), device=self.device), lens, output_size=total)
        first_out = torch.cumsum(lens, 0) - lens
        # position of each entry in the CSR arrays: its row's start + its rank inside the row
        pos = torch.repeat_interleave(starts - first_out, lens, output_size=total) + torch.arange(
            total, device=self.device
        )
        cols, vals = self.indices[pos], self.data[pos]
        n_cols = n_cols or self.shape[1]
        if n_cols < self.shape[1]:  # columns unknown to the model are dropped
            keep = cols < n_cols
            local, cols, vals = local[keep], cols[keep], vals[keep]
            first_out = torch.searchsorted(local, torch.arange(len(rows), device=self.device))
        return SparseRows(local, cols, vals, first_out, len(rows), n_cols)

    def dense_rows(self, rows: torch.Tensor, n_cols: int | None = None) -> torch.Tensor:
        return self.sparse_rows(rows, n_cols).dense()


class PositiveSet:
    """Membership test for (row, col) pairs of a DeviceCSR, vectorised.

    A dense bitmap when rows x cols is small (one gather per test), else sorted ``row * n_cols + col``
    keys and ``searchsorted`` (memory O(nnz)).
    """

    BITMAP_LIMIT = 1 << 27

    def __init__(self, csr: DeviceCSR) -> None:
        n_rows, self.n_cols = csr.shape
        rows = torch.repeat_interleave(torch.arange(n_rows, device=csr.device), csr.row_lengths())
        keys = rows * self.n_cols + csr.indices  # sorted: CSR rows in order, sorted indices
        self.bitmap: torch.Tensor | None = None
        self.keys: torch.Tensor | None = None
        if n_rows * self.n_cols <= self.BITMAP_LIMIT:
            self.bitmap = torch.zeros(n_rows * self.n_cols, dtype=torch.bool, device=csr.device)
            self.bitmap[keys] = True
        else:
            self.keys = keys

    def contains(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        keys = rows * self.n_cols + cols
        if self.bitmap is not None:
            return self.bitmap[keys]
        return contains(self.keys, keys)


def contains(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Vectorised membership of ``keys`` in a sorted 1-D tensor."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_max(sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def sample_negatives(
    users: torch.Tensor,
    n_items: int,
    positives: PositiveSet | None,
    generator: torch.Generator,
    max_rounds: int = 20,
) -> torch.Tensor:
    """One uniform item per entry of ``users`` that the user has not interacted with.

    Rejection sampling, vectorised: every round redraws only the collisions, so the expected work is
    ~1/(1 - density) draws per sample (He et al.'s NCF code redraws the same way, one at a time).
    Draws are made on the CPU generator (reproducible across devices) and moved to ``users.device``.
    """
    items = torch.randint(0, n_items, (len(users),), generator=generator).to(users.device)
    if positives is None:
        return items
    bad = torch.arange(len(users), device=users.device)
    for _ in range(max_rounds):
        hit = positives.contains(users[bad], items[bad])
        bad = bad[hit]
        if len(bad) == 0:
            break
        items[bad] = torch.randint(0, n_items, (len(bad),), generator=generator).to(users.device)
    return items


class SparseInputLinear(nn.Module):
    """``x @ weight + bias`` for a ``SparseRows`` batch, as an embedding bag over the stored entries.

    ``weight`` is ``[n_in, n_out]`` (one row per input unit, i.e. per item for user-input encoders),
    so growing the vocabulary appends rows. Equal to ``nn.Linear`` on the dense input.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))
        nn.init.xavier_uniform_(self.weight)
        nn.init.normal_(self.bias, std=0.001)

    def forward(self, x: SparseRows) -> torch.Tensor:
        out = F.embedding_bag(
            x.cols, self.weight, x.offsets, mode="sum", per_sample_weights=x.vals.to(self.weight.dtype)
        )
        return out + self.bias


def csr_to_exclude_mask(exclude: sp.csr_matrix, n_items: int, device: torch.device) -> torch.Tensor:
    """Dense bool mask of a (small) block of rows of a CSR matrix; columns beyond ``n_items`` dropped."""
    coo = exclude.tocoo()
    keep = coo.col < n_items
    mask = torch.zeros((exclude.shape[0], n_items), dtype=torch.bool, device=device)
    mask[
        torch.from_numpy(coo.row[keep].astype(np.int64)).to(device),
        torch.from_numpy(coo.col[keep].astype(np.int64)).to(device),
    ] = True
    return mask


# --------------------------------------------------------------------------------------------------
# chunked scoring, top-N and validation metrics
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def topn_users(
    model: UserRecommender,
    users: np.ndarray,
    history: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    n: int,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``n`` items per user, ``exclude``'s items removed: ``(idx int64, score float32)`` ``[len(users), n']``.

    ``n' = min(n, n_items)``. Scores ``chunk`` users at a time (memory: one ``chunk x n_items`` block);
    excluded items come back last with score ``-inf`` only when a user has fewer than ``n`` candidates.
    Results are on the CPU, sorted by score descending.
    """
    users = np.asarray(users, dtype=np.int64)
    history = sp.csr_matrix(history)
    n_items = model.n_items
    nn_ = min(n, n_items)
    out_idx = torch.empty((len(users), nn_), dtype=torch.int64)
    out_val = torch.empty((len(users), nn_), dtype=torch.float32)
    for start in range(0, len(users), chunk):
        stop = min(start + chunk, len(users))
        scores = model.score_users(users[start:stop], history[start:stop]).float()
        scores = torch.nan_to_num(scores, nan=-math.inf)
        if exclude is not None:
            scores.masked_fill_(csr_to_exclude_mask(exclude[start:stop], n_items, scores.device), -math.inf)
        val, idx = torch.topk(scores, nn_, dim=1, sorted=True)
        out_idx[start:stop] = idx.cpu()
        out_val[start:stop] = val.cpu()
    return out_idx, out_val


@torch.no_grad()
def evaluate_user_targets(
    model: UserRecommender, targets: UserTargets, ks: tuple[int, ...] = (10, 20), chunk: int = 1024
) -> dict[str, float]:
    """Full-ranking HR/MRR/NDCG@K (conservative ties, recmodels.metrics) of one target per user.

    Used for early stopping; the protocol runner is the reference for reported figures.
    """
    metrics = RankingMetrics(ks=ks)
    users = np.asarray(targets.users, dtype=np.int64)
    history = sp.csr_matrix(targets.history)
    exclude = sp.csr_matrix(targets.exclude)
    tg = torch.as_tensor(np.asarray(targets.targets, dtype=np.int64))
    for start in range(0, len(users), chunk):
        stop = min(start + chunk, len(users))
        scores = model.score_users(users[start:stop], history[start:stop]).float()
        ex = csr_to_exclude_mask(exclude[start:stop], model.n_items, scores.device)
        metrics.add(scores, tg[start:stop].to(scores.device), ex)
    out = metrics.result()
    out["n_predictions"] = float(metrics.n)
    return out


# --------------------------------------------------------------------------------------------------
# base class of the trained user models
# --------------------------------------------------------------------------------------------------


def build_config(config_cls: type, config: Any) -> Any:
    """A config dataclass from an instance, a dict (unknown keys rejected) or None (defaults)."""
    if isinstance(config, config_cls):
        return config
    params = dict(config or {})
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{config_cls.__name__}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    for f in fields(config_cls):  # JSON round trips turn tuples into lists
        if f.name in params and isinstance(params[f.name], list):
            params[f.name] = tuple(params[f.name])
    return config_cls(**params)


class TorchUserModel(TrainedModel, UserRecommender):
    """A user model trained by mini-batch gradient descent (``recmodels.trainer.Trainer``).

    Subclass contract:
    - ``config_cls``: a dataclass with at least ``epochs, lr, batch_size, patience, valid_metric,
      eval_every, weight_decay`` (and optionally ``precision``: auto | fp32 | bf16, see
      ``recmodels.device.autocast``);
    - ``_build(n_users, n_items) -> nn.Module``;
    - ``_epoch_batches(generator) -> iterator of batches`` (vectorised sampling, afresh each epoch);
    - ``_loss(batch) -> scalar tensor`` and ``_batch_size(batch) -> int`` (samples processed);
    - ``_score(users_t, history: SparseRows | None) -> [B, n_items]``;
    - class attributes naming the state-dict tensors whose rows (or columns) are items / users, so
      ``load`` can grow them into a larger vocabulary.
    """

    config_cls: ClassVar[type]
    item_row_keys: ClassVar[tuple[str, ...]] = ()  # state tensors with one row per item (outputs, embeddings)
    item_input_keys: ClassVar[tuple[str, ...]] = ()  # one row per item *input* unit: new rows are zero
    user_row_keys: ClassVar[tuple[str, ...]] = ()  # state tensors with one row per user
    needs_history: ClassVar[bool] = True  # whether ``_score`` reads the history rows
    score_chunk_elems: ClassVar[int] = 1 << 26  # bound on per-block intermediate elements in scoring

    def __init__(self, config: Any = None, device: str | torch.device | None = None, seed: int = 0) -> None:
        super().__init__(build_config(self.config_cls, config), device, seed)
        self.n_users = 0
        self.module: nn.Module | None = None
        self._train: DeviceCSR | None = None
        self._gen: torch.Generator | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.max_batches_per_epoch: int | None = None  # benchmarks: cap on optimiser steps per epoch

    @property
    def valid_metric(self) -> str:  # type: ignore[override]
        return self.config.valid_metric

    # --- subclass hooks -----------------------------------------------------------------------
    @abstractmethod
    def _build(self, n_users: int, n_items: int) -> nn.Module: ...

    @abstractmethod
    def _epoch_batches(self, generator: torch.Generator) -> Iterator[Any]: ...

    @abstractmethod
    def _loss(self, batch: Any) -> torch.Tensor: ...

    @abstractmethod
    def _score(self, users: torch.Tensor, history: SparseRows | None) -> torch.Tensor: ...

    def _batch_size(self, batch: Any) -> int:
        return len(batch[0])

    def _prepare(self, train: Interactions) -> None:
        """Per-fit precomputation after the module exists (e.g. positive keys). Default: none."""

    def _on_step(self) -> None:
        """Called after each optimiser step (annealing schedules)."""

    def _make_optimizer(self) -> torch.optim.Optimizer:
        assert self.module is not None
        # fused: one kernel over all parameters (6x faster than the foreach path on CPU for 1M+ params)
        return torch.optim.Adam(
            self.module.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay, fused=True
        )

    def _after_fit(self, train: Interactions) -> None:
        """Hook after the best state is restored (e.g. caching item codes). Default: none."""

    def _precision(self) -> str:
        return getattr(self.config, "precision", "auto")

    # --- the Trainer's hooks ------------------------------------------------------------------
    def begin_fit(self, train: Interactions, warm_from: Path | None) -> None:
        self._gen = seed_everything(self.seed)
        n_users, n_items = train.matrix.shape
        self.n_users, self.n_items = n_users, n_items
        self.module = self._build(n_users, n_items).to(self.device)
        if warm_from is not None:
            warm = self._load_warm(warm_from, n_items=n_items, n_users=n_users)
            self._copy_warm(self.module, warm.module.state_dict(), warm_from)
        self._train = DeviceCSR(train.matrix, self.device)
        self._prepare(train)
        self.optimizer = self._make_optimizer()

    def train_batches(self) -> Iterator[Any]:
        assert self.module is not None and self._gen is not None
        self.module.train()
        batches = self._epoch_batches(self._gen)
        cap = self.max_batches_per_epoch
        return batches if cap is None else itertools.islice(batches, cap)

    def train_step(self, batch: Any) -> Step:
        with autocast(self.device, self._precision()):
            loss = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._on_step()
        bs = self._batch_size(batch)
        return Step(loss.detach().float() * bs, bs, bs)

    def validate(self, valid: UserTargets) -> dict[str, float]:
        k = int(self.valid_metric.split("@")[1])
        return evaluate_user_targets(self, valid, ks=tuple(sorted({10, k})))

    def end_fit(self, train: Interactions) -> None:
        self.module.eval()
        self.optimizer = None
        self._after_fit(train)

    # --- scoring ------------------------------------------------------------------------------
    def _user_chunk(self) -> int:
        """Users per scoring block so that ``block x n_items x width`` intermediates stay bounded."""
        return max(1, self.score_chunk_elems // max(self.n_items * self._score_width(), 1))

    def _score_width(self) -> int:
        return 1

    @torch.no_grad()
    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        if self.module is None:
            raise RuntimeError(f"{self.name}: fit or load the model before scoring")
        self.module.eval()
        users = np.asarray(users, dtype=np.int64)
        if len(users) and (users.min() < 0 or users.max() >= self.n_users) and self._growth_keys()[2]:
            raise ValueError(f"{self.name}: user index out of range (model has {self.n_users} users; grow with load)")
        history = sp.csr_matrix(history)
        out = torch.empty((len(users), self.n_items), device=self.device)
        step = self._user_chunk()
        for start in range(0, len(users), step):
            stop = min(start + step, len(users))
            u = torch.from_numpy(users[start:stop]).to(self.device)
            h = None
            if self.needs_history:  # items unknown to the model are dropped from the input
                h = DeviceCSR(history[start:stop], self.device).sparse_rows(
                    torch.arange(stop - start, device=self.device), n_cols=self.n_items
                )
            with autocast(self.device, self._precision()):
                out[start:stop] = self._score(u, h).float()
        return out

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        meta = {"n_users": self.n_users, "config": asdict(self.config)}
        meta.update(extra_meta or {})
        return super().save(directory, meta)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        n_items: int | None = None,
        n_users: int | None = None,
        device: str | torch.device | None = None,
    ) -> TorchUserModel:
        """Load a checkpoint (``weights_only``), growing item / user tables to ``n_items`` / ``n_users``.

        Old rows keep their values, so known users and items score exactly as before; new item rows
        are drawn like the old ones (``checkpoint.grow_rows``); new input columns are zero, so a new
        item in a history does not move the user's code until the model is retrained.
        """
        from recmodels.checkpoint import (
            CheckpointError,
            check_shapes,
            grow_rows,
            load_checkpoint,
            module_shapes,
            validate_meta,
        )

        state, meta = load_checkpoint(Path(directory))
        cfg = validate_meta(Path(directory), meta, cls.name, cls.config_cls, {"n_items": n_items, "n_users": n_users})
        old_items, old_users = int(meta["n_items"]), int(meta["n_users"])
        new_items = old_items if n_items is None else int(n_items)
        new_users = old_users if n_users is None else int(n_users)
        if new_items < old_items or new_users < old_users:
            raise CheckpointError(
                f"{directory}: vocabulary shrank ({old_users}x{old_items} -> {new_users}x{new_items}); indices are never reassigned"
            )
        model = cls(config=cfg, device=device, seed=int(meta.get("seed", 0)))
        # keys and shapes against the configuration (module built on the meta device) before any copy
        try:
            expected = module_shapes(lambda: model._build(old_users, old_items))
        except (ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{directory}: configuration refused ({str(exc).splitlines()[0]})") from None
        extra = {k: tuple(state[k].shape) for k in model.extra_state_keys if k in state}
        check_shapes(Path(directory), state, expected | extra)
        gen = torch.Generator().manual_seed(model.seed)  # the same checkpoint always grows the same way
        item_rows, item_inputs, user_rows, user_inputs = model._growth_keys()
        for keys, size, std in (
            (item_rows, new_items, None),
            (user_rows, new_users, None),
            (item_inputs, new_items, 0.0),
            (user_inputs, new_users, 0.0),
        ):
            for key in keys:
                if key in state:
                    state[key] = grow_rows(state[key], size, init_std=std, generator=gen)
        model.n_items, model.n_users = new_items, new_users
        model.module = model._build(new_users, new_items).to(model.device)
        model._load_extra_state(state, old_items, old_users)
        try:
            model.module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{directory}: weights do not fit {cls.name} ({str(exc).splitlines()[0]})") from None
        model.module.eval()
        return model

    def _growth_keys(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """State keys to grow: (item rows, item input rows, user rows, user input rows)."""
        return self.item_row_keys, self.item_input_keys, self.user_row_keys, ()

    extra_state_keys: tuple[str, ...] = ()  # state tensors that are not the module's (see _load_extra_state)

    def _load_extra_state(self, state: dict[str, torch.Tensor], old_items: int, old_users: int) -> None:
        """Hook: pop / fix non-module tensors from ``state`` before ``load_state_dict``."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.module is None else self.module.state_dict()


def fp32_linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)`` in fp32 even under bf16 autocast: final scores in bf16 tie far too often, and the
    protocol counts ties against the target (conservative ranks)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return torch.nn.functional.linear(x.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())
