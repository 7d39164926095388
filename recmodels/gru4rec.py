"""GRU4Rec: session-based recommendation with recurrent networks, as its authors define it.

Papers: Hidasi, Karatzoglou, Baltrunas, Tikk, "Session-based Recommendations with Recurrent Neural
Networks", ICLR 2016; Hidasi & Karatzoglou, "Recurrent Neural Networks with Top-k Gains for
Session-based Recommendations", CIKM 2018. Reference behaviour: the official PyTorch port
(github.com/hidasib/GRU4Rec_PyTorch_Official), whose published RSC15 cross-entropy settings are this
module's defaults.

Implemented (paper / official code feature -> here):
- session-parallel mini-batches, hidden state zeroed in a slot when its session ends, sessions in
  order of start time, the batch shrinking at the end of the epoch (idle slots masked out);
- item input as the shared output embedding (``constrained_embedding``, default), a separate
  embedding (``embedding > 0``) or one-hot (``embedding == 0`` and not constrained: the official
  ``GRUEmbedding`` layer, i.e. a one-hot input multiplied into the first GRU layer's gates);
- one or more GRU layers; dropout on the input embedding and on every layer's output, the dropped-out
  output being the state carried to the next step (as in the official code); 1-step truncated BPTT
  (the hidden state is detached every step, as in the official code);
- output = hidden . output item embedding + item bias, scored against the mini-batch's targets plus
  ``n_sample`` extra items shared by the whole mini-batch, drawn from popularity^``sample_alpha`` and
  pre-generated in large blocks (``sample_cache_max_size``);
- losses: cross-entropy with optional logQ sampling correction (``logq``), BPR-max and TOP1-max
  (score regularisation ``bpreg``, optional ELU on the scores ``elu_param``), plain BPR and TOP1;
- optimiser: Adagrad with momentum updating only the embedding rows a step touched (official
  ``IndexedAdagradM``: duplicate rows coalesced before squaring), Adam as an option (lazy, per row
  for the tables); init: uniform +-sqrt(6 / (fan_in + fan_out)) per gate block, zero biases (the
  official "compatibility mode");
- inference carrying the hidden state along each session, batched over many sessions; items unknown
  to the model leave the state unchanged; inference and final scores in float32 on every device
  (autocast disabled: a bf16 GRU cell would drift from the trained model and tie scores);
- items without training support (never a target and never a possible sampled negative, e.g. first
  seen on the validation / test day of a night) keep their random initialisation and score -inf, so
  they are never recommended; the support mask travels with the checkpoint (grown items: none);
- checkpoints carry the optimiser state (row and dense Adagrad accumulators / momentum, Adam moments
  and step), so a warm start continues the optimiser instead of restarting it (a reset accumulator
  makes each row's first update move by about the learning rate and undo part of the warm start);
  keys and shapes are checked against the configuration before anything is copied.

Speed (same maths as the official code, fewer and leaner operations per step; the step loop is the
only Python loop over events):
- the epoch's session-parallel layout, item ids, reset masks, negatives (Walker alias sampling
  instead of a binary search over the CDF), dropout masks and logQ terms are prepared per block of
  up to 1024 steps, vectorised;
- each step's output rows (inputs, targets, negatives) are de-duplicated per block; the sampled
  softmax over the B + n_sample columns is computed exactly over the U distinct items (a column's
  multiplicity and logQ weight enter as a log-weight), so the scoring matmul is [B, d+1] x [d+1, U];
- embedding rows, their Adagrad accumulator and momentum sit in one fused row state: one gather and
  one write-back per step;
- the default configuration (cross-entropy, constrained embedding) runs a hand-written backward
  pass (no autograd graph per step; checked against autograd in the tests); other configurations
  use autograd; no host-device synchronisation inside the step loop (losses accumulate on device).

Left out / deviations: the official ``compatibility_mode`` numpy RNG stream (we seed torch instead);
the official trainer's NaN abort; in the constrained mode the item bias shares the embedding table's
row update, so a row used only as *input* also gets its (decayed) bias momentum applied, where the
official code keeps the bias in a second table (effect: negligible, no gradient flows there).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recmodels.base import SessionRecommender, Step, TrainedModel
from recmodels.checkpoint import CheckpointError, check_shapes, grow_rows, load_checkpoint, validate_meta
from recmodels.data import Sessions
from recmodels.device import autocast, seed_everything
from recmodels.session_batching import (
    ParallelSchedule,
    known_items,
    pad_sessions,
    session_order,
    session_parallel_schedule,
    validation_mrr,
)

LOSSES = ("cross-entropy", "bpr-max", "top1-max", "bpr", "top1")


@dataclass
class GRU4RecConfig:
    """Hyperparameters (names as in the official code, but the training settings spelled as every model
    spells them: ``epochs``, ``lr``, ``batch_size``, ``patience``). Defaults = official RSC15
    cross-entropy settings."""

    layers: list[int] = field(default_factory=lambda: [100])
    loss: str = "cross-entropy"
    batch_size: int = 32
    n_sample: int = 2048
    sample_alpha: float = 0.5
    sample_cache_max_size: int = 10_000_000  # negatives pre-generated per block: this many ids
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.4
    lr: float = 0.2  # the official code's learning_rate
    momentum: float = 0.2
    optimizer: str = "adagrad"  # "adagrad" (Adagrad + momentum, official) | "adam"
    bpreg: float = 1.0  # score regularisation of BPR-max
    elu_param: float = 0.0  # > 0: ELU on the scores before BPR-max
    logq: float = 1.0  # > 0: cross-entropy logQ sampling correction weight
    constrained_embedding: bool = True
    embedding: int = 0  # > 0: separate input embedding of this size (when not constrained)
    epochs: int = 10  # the official code's n_epochs
    patience: int | None = None  # validation MRR@20 evaluations without a new best before stopping; None: never

    def __post_init__(self) -> None:
        self.layers = [int(x) for x in self.layers]
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; one of {LOSSES}")
        if self.optimizer not in ("adagrad", "adam"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}")


# --- losses: scores R [B, B+S], row i's target is column i ---------------------------------------
def _f32(R: torch.Tensor) -> torch.Tensor:
    """Losses run in float32 at least (scores may be bf16 under CUDA autocast)."""
    return R if R.dtype in (torch.float32, torch.float64) else R.float()


def _neg_softmax(R: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Softmax of each row over its negatives only (official ``softmax_neg``)."""
    X = R * neg_mask
    e = torch.exp(X - X.max(dim=1, keepdim=True).values) * neg_mask
    return e / e.sum(dim=1, keepdim=True)


def bpr_max_loss(
    R: torch.Tensor, neg_mask: torch.Tensor, row_w: torch.Tensor, bpreg: float, elu_param: float = 0.0
) -> torch.Tensor:
    """BPR-max (CIKM 2018 eq. 9 + score regularisation), summed over rows.

    L_i = -log(sum_j s_ij sigmoid(r_ii - r_ij)) + bpreg * sum_j s_ij r_ij^2, s_i = softmax over negatives.
    """
    R = _f32(R)
    if elu_param > 0:
        R = F.elu(R, elu_param)
    s = _neg_softmax(R, neg_mask)
    target = torch.diagonal(R)[:, None]
    loss = -torch.log((torch.sigmoid(target - R) * s).sum(1) + 1e-24) + bpreg * (R * R * s).sum(1)
    return (loss * row_w).sum()


def top1_max_loss(R: torch.Tensor, neg_mask: torch.Tensor, row_w: torch.Tensor) -> torch.Tensor:
    """TOP1-max (CIKM 2018): L_i = sum_j s_ij (sigmoid(r_ij - r_ii) + sigmoid(r_ij^2)), summed over rows."""
    R = _f32(R)
    s = _neg_softmax(R, neg_mask)
    target = torch.diagonal(R)[:, None]
    loss = ((torch.sigmoid(R - target) + torch.sigmoid(R * R)) * s).sum(1)
    return (loss * row_w).sum()


def bpr_loss(R: torch.Tensor, neg_mask: torch.Tensor, row_w: torch.Tensor) -> torch.Tensor:
    """BPR (ICLR 2016): L_i = mean over negatives j of -log sigmoid(r_ii - r_ij), summed over rows."""
    R = _f32(R)
    target = torch.diagonal(R)[:, None]
    loss = (-F.logsigmoid(target - R) * neg_mask).sum(1) / neg_mask.sum(1).clamp_min(1.0)
    return (loss * row_w).sum()


def top1_loss(R: torch.Tensor, neg_mask: torch.Tensor, row_w: torch.Tensor) -> torch.Tensor:
    """TOP1 (ICLR 2016): L_i = mean over negatives j of sigmoid(r_ij - r_ii) + sigmoid(r_ij^2), summed."""
    R = _f32(R)
    target = torch.diagonal(R)[:, None]
    loss = ((torch.sigmoid(R - target) + torch.sigmoid(R * R)) * neg_mask).sum(1) / neg_mask.sum(1).clamp_min(
        1.0
    )
    return (loss * row_w).sum()


# --- parameters and optimisers --------------------------------------------------------------------
def _glorot_(t: torch.Tensor, gen: torch.Generator, blocks: int = 1) -> torch.Tensor:
    """Uniform +-sqrt(6 / (fan_in + fan_out)) per gate block (official compatibility-mode init).

    ``t`` is [blocks * out, in] (torch GRU layout) or [rows, cols] with blocks=1.
    """
    rows, cols = t.shape
    sigma = math.sqrt(6.0 / (rows / blocks + cols))
    with torch.no_grad():
        t.copy_((torch.rand(t.shape, generator=gen) * 2 - 1) * sigma)
    return t


class _RowOptimizer:
    """Adagrad(+momentum) or lazy Adam on the rows of a table that one step touched.

    The table lives in a fused row state ``[rows, 3, width]`` = (weights, Adagrad sum of squares or
    Adam second moment, momentum or Adam first moment): one gather at the start of a step fetches
    everything a row needs (the forward pass reads slot 0 of the gathered block) and one
    ``index_copy_`` writes it back, instead of three gathers and three scatters over three tables.
    ``step`` receives coalesced rows (each row once; padding entries all point at the last, scratch
    row, which no score reads), as the official ``IndexedAdagradM`` coalesces the sparse gradient
    before squaring it.
    """

    def __init__(self, state: torch.Tensor, cfg: GRU4RecConfig) -> None:
        self.state = state
        self.cfg = cfg
        self.eps = 1e-6 if cfg.optimizer == "adagrad" else 1e-8
        # a fresh table starts with zero accumulators (GRU4RecNet); a warm start keeps the checkpoint's
        self.t = 0

    @torch.no_grad()
    def step(self, uniq: torch.Tensor, st: torch.Tensor, g: torch.Tensor) -> None:
        """Update the gathered block ``st`` = ``state[uniq]`` in place with gradient ``g`` and write it back."""
        cfg = self.cfg
        w, acc, mom = st[:, 0], st[:, 1], st[:, 2]
        if cfg.optimizer == "adagrad":
            acc.addcmul_(g, g)
            denom = acc.add(self.eps).sqrt_()
            if cfg.momentum > 0:
                mom.mul_(cfg.momentum).addcdiv_(g, denom, value=-cfg.lr)
                w.add_(mom)
            else:
                w.addcdiv_(g, denom, value=-cfg.lr)
        else:
            self.t += 1
            b1, b2 = 0.9, 0.999
            mom.lerp_(g, 1 - b1)
            acc.mul_(b2).addcmul_(g, g, value=1 - b2)
            lr = cfg.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            w.addcdiv_(mom, acc.sqrt().add_(self.eps), value=-lr)
        self.state.index_copy_(0, uniq, st)


def coalesce_rows(rows: torch.Tensor, scratch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per step (row of ``rows`` [K, N]) the distinct ids and where each entry sits among them.

    Returns ``uniq`` [K, U] (U = the block's largest distinct count; shorter rows padded with
    ``scratch``) and ``inv`` [K, N] with ``uniq[k, inv[k, j]] == rows[k, j]``. Gathering ``uniq`` once
    and expanding with ``inv`` makes autograd's index backward produce an already coalesced row
    gradient. Ids must lie in ``[0, scratch]``. One host sync per block (U), none per step.
    """
    K, N = rows.shape
    if scratch + 1 <= 4 * N:
        # small vocabulary: a presence bitmap + cumsum is much cheaper than sorting
        pres = torch.zeros(K, scratch + 1, dtype=torch.bool, device=rows.device).scatter_(1, rows, True)
        pos = torch.cumsum(pres, 1) - 1
        inv = pos.gather(1, rows)
        U = int(pos[:, -1].max()) + 1
    else:
        srt, perm = torch.sort(rows, 1)
        first = torch.ones_like(srt, dtype=torch.bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        seg = torch.cumsum(first, 1) - 1
        U = int(seg[:, -1].max()) + 1
        inv = torch.empty_like(rows).scatter_(1, perm, seg)
    uniq = torch.full((K, U), scratch, dtype=rows.dtype, device=rows.device).scatter_(1, inv, rows)
    return uniq, inv


class AliasSampler:
    """Exact O(1) sampling from a discrete distribution (Walker / Vose alias method), vectorised draws.

    Replaces the official binary search over the CDF (same distribution, far cheaper per draw on
    CPU); built once per fit, with a loop over *items*.
    """

    def __init__(self, weights: np.ndarray, device: torch.device, seed: int) -> None:
        w = np.asarray(weights, dtype=np.float64)
        n = len(w)
        p = w * n / w.sum()
        prob = np.ones(n)
        alias = np.arange(n)
        small = [i for i in range(n) if p[i] < 1.0]
        large = [i for i in range(n) if p[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s] = p[s]
            alias[s] = g
            p[g] = p[g] + p[s] - 1.0
            (small if p[g] < 1.0 else large).append(g)
        self.n = n
        self.prob = torch.tensor(prob, dtype=torch.float32, device=device)
        self.alias = torch.tensor(alias, dtype=torch.int64, device=device)
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def sample(self, shape: tuple[int, ...]) -> torch.Tensor:
        dev = self.prob.device
        i = torch.randint(0, self.n, shape, device=dev, generator=self.gen)
        u = torch.rand(shape, device=dev, generator=self.gen)
        return torch.where(u < self.prob[i], i, self.alias[i])


class _DenseOptimizer:
    """Adagrad(+momentum) / Adam on the dense (GRU) parameters with fused multi-tensor ops."""

    def __init__(self, params: list[torch.Tensor], cfg: GRU4RecConfig) -> None:
        self.params = params
        self.cfg = cfg
        self.eps = 1e-6 if cfg.optimizer == "adagrad" else 1e-8
        self.acc = [torch.zeros_like(p) for p in params]
        self.mom = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor] | None = None) -> None:
        cfg = self.cfg
        if grads is None:
            grads = [p.grad for p in self.params]
        if cfg.optimizer == "adagrad":
            torch._foreach_addcmul_(self.acc, grads, grads)
            denom = torch._foreach_add(self.acc, self.eps)
            torch._foreach_sqrt_(denom)
            if cfg.momentum > 0:
                torch._foreach_mul_(self.mom, cfg.momentum)
                torch._foreach_addcdiv_(self.mom, grads, denom, value=-cfg.lr)
                torch._foreach_add_(self.params, self.mom)
            else:
                torch._foreach_addcdiv_(self.params, grads, denom, value=-cfg.lr)
        else:
            self.t += 1
            b1, b2 = 0.9, 0.999
            torch._foreach_lerp_(self.mom, grads, 1 - b1)
            torch._foreach_mul_(self.acc, b2)
            torch._foreach_addcmul_(self.acc, grads, grads, value=1 - b2)
            denom = torch._foreach_sqrt(self.acc)
            torch._foreach_add_(denom, self.eps)
            lr = cfg.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            torch._foreach_addcdiv_(self.params, self.mom, denom, value=-lr)


class GRU4RecNet(torch.nn.Module):
    """Parameters of GRU4Rec. Tables keep one extra scratch row (index ``n_items``) for the optimiser.

    ``table`` = [output item embedding | item bias], [n_items + 1, d + 1]; with constrained
    embeddings its first d columns are also the input embedding. ``E`` = separate input embedding
    (``embedding > 0``) or the one-hot input's gate table [n_items + 1, 3 H] (one-hot mode).
    """

    def __init__(self, n_items: int, cfg: GRU4RecConfig, gen: torch.Generator) -> None:
        super().__init__()
        self.n_items = n_items
        self.cfg = cfg
        L = cfg.layers
        d = L[-1]
        self.onehot = not cfg.constrained_embedding and cfg.embedding <= 0
        # fused row state [rows, (weights, optimiser acc, optimiser mom), width], see _RowOptimizer
        self.register_buffer("W3", torch.zeros(n_items + 1, 3, d + 1))
        _glorot_(self.W3[:, 0, :d], gen)
        self.register_buffer("E3", None)
        if cfg.constrained_embedding:
            n_in = d
        elif cfg.embedding > 0:
            self.E3 = torch.zeros(n_items + 1, 3, cfg.embedding)
            _glorot_(self.E3[:, 0], gen)
            n_in = cfg.embedding
        else:
            # official GRUEmbedding: one-hot x [n_items, 3H] gate table, then Cho et al.'s GRU update
            self.E3 = torch.zeros(n_items + 1, 3, 3 * L[0])
            for k in range(3):
                _glorot_(self.E3[:, 0, k * L[0] : (k + 1) * L[0]], gen)
            self.Wrz0 = torch.nn.Parameter(
                torch.cat([_glorot_(torch.empty(L[0], L[0]), gen) for _ in range(2)], 1)
            )
            self.Wh0 = torch.nn.Parameter(_glorot_(torch.empty(L[0], L[0]), gen))
            self.Bh0 = torch.nn.Parameter(torch.zeros(3 * L[0]))
            n_in = L[0]
        self.w_ih = torch.nn.ParameterList()
        self.w_hh = torch.nn.ParameterList()
        self.b_ih = torch.nn.ParameterList()
        self.b_hh = torch.nn.ParameterList()
        for i in range(1 if self.onehot else 0, len(L)):
            self.w_ih.append(torch.nn.Parameter(_glorot_(torch.empty(3 * L[i], n_in), gen, blocks=3)))
            self.w_hh.append(torch.nn.Parameter(_glorot_(torch.empty(3 * L[i], L[i]), gen, blocks=3)))
            self.b_ih.append(torch.nn.Parameter(torch.zeros(3 * L[i])))
            self.b_hh.append(torch.nn.Parameter(torch.zeros(3 * L[i])))
            n_in = L[i]

    @property
    def table(self) -> torch.Tensor:
        """[output item embedding | item bias] ``[n_items + 1, d + 1]`` (a view of the fused state)."""
        return self.W3[:, 0]

    @property
    def E(self) -> torch.Tensor | None:
        """Separate input embedding / one-hot gate table (a view of its fused state), or None."""
        return None if self.E3 is None else self.E3[:, 0]

    def dense_params(self) -> list[torch.Tensor]:
        return [p for p in self.parameters() if p.requires_grad]

    def hidden_step(
        self, x: torch.Tensor, H: list[torch.Tensor], drop: list[torch.Tensor | None] | None = None
    ) -> list[torch.Tensor]:
        """One step of the GRU stack; ``x`` = input embedding (or the one-hot gate rows). Returns new states.

        ``drop`` = per-layer dropout masks (already scaled by 1 / (1 - p)), pre-drawn per block of
        steps because per-step Bernoulli draws cost more than the GRU itself on CPU.
        """
        out: list[torch.Tensor] = []
        li = 0
        if self.onehot:
            # official GRUEmbedding: r, z from one-hot rows + H Wrz; h~ = tanh((r*H) Wh + x_h); h = (1-z) H + z h~
            vx = x + self.Bh0
            vx_x, vx_r, vx_z = vx.chunk(3, 1)
            vh_r, vh_z = (H[0] @ self.Wrz0).chunk(2, 1)
            r = torch.sigmoid(vx_r + vh_r)
            z = torch.sigmoid(vx_z + vh_z)
            h = torch.tanh((r * H[0]) @ self.Wh0 + vx_x)
            x = (1.0 - z) * H[0] + z * h
            if drop is not None and drop[0] is not None:
                x = x * drop[0]
            out.append(x)
            li = 1
        for j in range(len(self.w_ih)):
            x = torch.gru_cell(x, H[li + j], self.w_ih[j], self.w_hh[j], self.b_ih[j], self.b_hh[j])
            # the dropped-out output is also the state carried on (official code)
            if drop is not None and drop[li + j] is not None:
                x = x * drop[li + j]
            out.append(x)
        return out


class GRU4Rec(TrainedModel, SessionRecommender):
    """GRU4Rec session model (see module docstring)."""

    name = "gru4rec"

    def __init__(
        self,
        config: GRU4RecConfig | dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(config, dict):
            config = GRU4RecConfig(**config)
        super().__init__(config or GRU4RecConfig(), device, seed)
        self.config: GRU4RecConfig
        self.module: GRU4RecNet | None = None
        # None = hand-written backward where available; tests force True / False to compare them
        self._manual_backward: bool | None = None
        # items with training support (a target, or a possible sampled negative): the others keep their
        # random initialisation and are never recommended (scored -inf)
        self.support: torch.Tensor | None = None
        # dense optimiser state (Adagrad accumulators / momentum, Adam moments), kept for warm starts
        self._dense_opt: _DenseOptimizer | None = None
        self._pending_dense: dict[str, torch.Tensor] | None = None
        # set up by begin_fit for the Trainer, released by end_fit
        self._steps: _EpochTrainer | None = None
        self._schedule: ParallelSchedule | None = None

    # --- construction / persistence ------------------------------------------------------------
    def _build(self, n_items: int) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        self.n_items = n_items
        self.module = GRU4RecNet(n_items, self.config, gen).to(self.device)
        self.support = torch.zeros(n_items, dtype=torch.bool, device=self.device)
        self._dense_opt = None
        self._pending_dense = None

    def expected_shapes(self, n_items: int) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
        """(required, optional) state keys and shapes for this configuration and ``n_items``, computed
        from the configuration alone (nothing allocated). Optional: the support mask and the optimiser
        state (checkpoints written before they were saved lack them)."""
        cfg = self.config
        L, d = cfg.layers, cfg.layers[-1]
        req: dict[str, tuple[int, ...]] = {"Wy": (n_items, d), "By": (n_items,)}
        onehot = not cfg.constrained_embedding and cfg.embedding <= 0
        width = None
        n_in = d
        if not cfg.constrained_embedding:
            width = cfg.embedding if cfg.embedding > 0 else 3 * L[0]
            req["E"] = (n_items, width)
            n_in = cfg.embedding if cfg.embedding > 0 else L[0]
        dense: dict[str, tuple[int, ...]] = {}
        if onehot:
            dense |= {"Wrz0": (L[0], 2 * L[0]), "Wh0": (L[0], L[0]), "Bh0": (3 * L[0],)}
        for j, i in enumerate(range(1 if onehot else 0, len(L))):
            dense |= {f"w_ih.{j}": (3 * L[i], n_in), f"w_hh.{j}": (3 * L[i], L[i]),
                      f"b_ih.{j}": (3 * L[i],), f"b_hh.{j}": (3 * L[i],)}  # fmt: skip
            n_in = L[i]
        req |= dense
        opt: dict[str, tuple[int, ...]] = {"support": (n_items,), "opt.W3": (n_items, 2, d + 1), "opt.t": ()}
        if width is not None:
            opt["opt.E3"] = (n_items, 2, width)
        for k, shape in dense.items():
            opt[f"opt.acc.{k}"] = shape
            opt[f"opt.mom.{k}"] = shape
        return req, opt

    def check_state(self, state: dict[str, torch.Tensor], n_items: int, where: Any = "state") -> None:
        """Refuse (CheckpointError) a state whose keys or shapes do not fit the configuration."""
        req, opt = self.expected_shapes(n_items)
        present = {k: v for k, v in opt.items() if k in state}
        check_shapes(where, state, req | present)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors without the scratch row; keys stable across vocabulary sizes. Includes the support
        mask and the optimiser state, so a warm start continues the optimiser rather than resetting it."""
        m = self.module
        d = self.config.layers[-1]
        n = self.n_items
        out = {"Wy": m.table[:n, :d], "By": m.table[:n, d], "opt.W3": m.W3[:n, 1:]}
        if m.E is not None:
            out["E"] = m.E[:n]
            out["opt.E3"] = m.E3[:n, 1:]
        for k, v in m.named_parameters():
            out[k] = v
        if self.support is not None:
            out["support"] = self.support
        names = [k for k, _ in m.named_parameters()]
        if self._dense_opt is not None:
            for k, a, mo in zip(names, self._dense_opt.acc, self._dense_opt.mom, strict=True):
                out[f"opt.acc.{k}"], out[f"opt.mom.{k}"] = a, mo
            out["opt.t"] = torch.tensor(float(self._dense_opt.t))
        elif self._pending_dense is not None:
            out |= self._pending_dense
        return {k: v.detach().clone() for k, v in out.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        m = self.module
        d = self.config.layers[-1]
        n = self.n_items
        self.check_state(state, n)
        with torch.no_grad():
            m.table[:n, :d] = state["Wy"]
            m.table[:n, d] = state["By"]
            if "opt.W3" in state:
                m.W3[:n, 1:] = state["opt.W3"]
            if m.E is not None:
                m.E[:n] = state["E"]
                if "opt.E3" in state:
                    m.E3[:n, 1:] = state["opt.E3"]
            for k, v in m.named_parameters():
                v.copy_(state[k])
            # a checkpoint without a support mask (written before it existed): its rows count as trained
            sup = state.get("support")
            self.support = (torch.ones(n, dtype=torch.bool) if sup is None else sup.bool()).to(self.device)
        dense = {k: v for k, v in state.items() if k.startswith(("opt.acc.", "opt.mom.")) or k == "opt.t"}
        if self._dense_opt is not None and dense:
            self._set_dense_state(self._dense_opt, dense)
        else:
            self._pending_dense = dense or None

    def _set_dense_state(self, opt: _DenseOptimizer, dense: dict[str, torch.Tensor]) -> None:
        names = [k for k, _ in self.module.named_parameters()]
        if not all(f"opt.acc.{k}" in dense and f"opt.mom.{k}" in dense for k in names):
            return
        with torch.no_grad():
            for k, a, mo in zip(names, opt.acc, opt.mom, strict=True):
                a.copy_(dense[f"opt.acc.{k}"])
                mo.copy_(dense[f"opt.mom.{k}"])
        opt.t = int(dense["opt.t"]) if "opt.t" in dense else 0

    @classmethod
    def load(
        cls, directory: str | Path, n_items: int | None = None, device: str | torch.device | None = None
    ) -> GRU4Rec:
        """Load a checkpoint; ``n_items`` > the saved vocabulary appends new items (old items score as before)."""
        state, meta = load_checkpoint(Path(directory))
        cfg = validate_meta(Path(directory), meta, cls.name, GRU4RecConfig, {"n_items": n_items})
        model = cls(cfg, device=device, seed=int(meta.get("seed", 0)))
        old = int(meta["n_items"])
        # keys and shapes against the configuration before anything is built or copied
        model.check_state(state, old, directory)
        new = old if n_items is None else int(n_items)
        if new != old:
            state = dict(state)
            gen = torch.Generator().manual_seed(model.seed)  # the same checkpoint always grows the same way
            state["Wy"] = grow_rows(state["Wy"], new, generator=gen)
            state["By"] = grow_rows(state["By"], new, init_std=0.0, generator=gen)
            if "E" in state:
                state["E"] = grow_rows(state["E"], new, generator=gen)
            # new items: no training support yet, fresh optimiser state
            state["support"] = grow_rows(state.get("support", torch.ones(old, dtype=torch.bool)), new, init_std=0.0)
            for k in ("opt.W3", "opt.E3"):
                if k in state:
                    state[k] = grow_rows(state[k], new, init_std=0.0)
        model._build(new)
        try:
            model.load_state_dict({k: v.to(model.device) for k, v in state.items()})
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{directory}: weights do not fit the configuration ({exc})") from None
        return model

    # --- training ----------------------------------------------------------------------------------
    def flops_per_train_event(self) -> float:
        """Matmul FLOPs of one training event (forward + backward = 3x forward), for roofline reports."""
        cfg = self.config
        B, S, d = cfg.batch_size, cfg.n_sample, cfg.layers[-1]
        out = 2 * (B + S) * (d + 1)
        n_in = d if cfg.constrained_embedding else (cfg.embedding or cfg.layers[0])
        gru = 0
        for h in cfg.layers:
            gru += 2 * 3 * h * (n_in + h)
            n_in = h
        return 3.0 * (out + gru)

    def begin_fit(self, train: Sessions, warm_from: Path | None) -> None:
        """Fresh weights (or the checkpoint's, with its support and optimiser state), the epoch's
        session-parallel layout (the same every epoch: sessions in start-time order) and the step state."""
        cfg = self.config
        seed_everything(self.seed)
        self._build(train.n_items)
        if warm_from is not None:  # weights, support and optimiser state
            self._copy_warm(self, self._load_warm(warm_from, n_items=train.n_items).state_dict(), warm_from)
        self._schedule = session_parallel_schedule(
            train.offsets, cfg.batch_size, session_order(train.offsets, train.times)
        )
        steps = _EpochTrainer(self, train, manual=self._manual_backward)
        self.support = self.support | steps.support
        if self._pending_dense is not None:  # a warm start continues the dense optimiser too
            self._set_dense_state(steps.dense_opt, self._pending_dense)
            steps.row_opt.t = steps.dense_opt.t
            self._pending_dense = None
        self._dense_opt = steps.dense_opt
        self._steps = steps

    def train_batches(self) -> Iterator[_Block]:
        """The epoch's blocks of session-parallel steps (the hidden state starts at zero)."""
        return self._steps.blocks(self._schedule)

    def train_step(self, batch: _Block) -> Step:
        """The block's steps (the hand-written fast step, or autograd for the other configurations)."""
        return self._steps.step(batch)

    def validate(self, valid: Sessions) -> dict[str, float]:
        return validation_mrr(self, valid)

    def snapshot(self) -> dict[str, torch.Tensor]:
        return self.state_dict()  # weights, support and optimiser state, already copies

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)

    def end_fit(self, train: Sessions) -> None:
        self._steps = None
        self._schedule = None

    # --- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def session_states(self, sessions: Sessions) -> torch.Tensor:
        """Top-layer hidden state after every event ``[len(items), d]``, carried along each session."""
        m = self.module
        dev = self.device
        cfg = self.config
        d = cfg.layers[-1]
        n = sessions.n_sessions
        if len(sessions.items) == 0:
            return torch.zeros(0, d, device=dev)
        padded, lengths = pad_sessions(sessions.items, sessions.offsets, np.arange(n), pad=-1)
        X, known = known_items(torch.from_numpy(padded).to(dev), self.n_items)
        H = [torch.zeros(n, h, device=dev) for h in cfg.layers]
        outs = []
        table_in = m.table[:, :d] if m.E is None else m.E
        # inference in float32 on every device (training keeps its gate arithmetic in float32 too; a
        # bf16 GRU cell would drift from the trained model and create false score ties)
        with torch.autocast(dev.type, enabled=False):
            for t in range(padded.shape[1]):
                new = [h.float() for h in m.hidden_step(table_in.index_select(0, X[:, t]), H)]
                k = known[:, t : t + 1]
                # an unknown item leaves the state unchanged
                H = [torch.where(k, hn, ho) for hn, ho in zip(new, H, strict=True)]
                outs.append(H[-1].float())
        states = torch.stack(outs, 1)  # [n, L, d]
        mask = torch.from_numpy(np.arange(padded.shape[1])[None, :] < lengths[:, None]).to(dev)
        return states[mask]  # row-major boolean select = event order

    @torch.no_grad()
    def score_next(self, sessions: Sessions) -> torch.Tensor:
        if self.module is None:
            raise RuntimeError("GRU4Rec: fit or load the model first")
        d = self.config.layers[-1]
        h = self.session_states(sessions)
        W = self.module.table[: self.n_items]
        # float32 scores, not bf16: with conservative ties, bf16 rounding would create false ties
        with torch.autocast(self.device.type, enabled=False):
            scores = torch.addmm(W[:, d].float(), h.float(), W[:, :d].float().t())
        if self.support is not None and not bool(self.support.all()):
            # rows never trained (never a target nor a possible negative) keep their random init
            scores.masked_fill_(~self.support[None, :], -float("inf"))
        return scores

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


@dataclass
class _Block:
    """A block of up to 1024 session-parallel steps, prepared vectorised (``_EpochTrainer._prepare``):
    per step ``k`` the slots' reset masks, the distinct output rows ``uniq[k]`` and where inputs /
    outputs / targets sit among them, the cross-entropy's log-weights, and the dropout masks."""

    K: int  # steps
    events: int  # predictions (non-idle slots)
    idle: torch.Tensor  # bool [K, B]
    live: torch.Tensor  # float [K, B]: 1 for a slot with an event
    keep: torch.Tensor  # float [K, B, 1]: 0 where a new session starts (state reset)
    partial: list[bool]  # steps with idle slots (end of the epoch)
    uniq: torch.Tensor | None = None
    inv_in: torch.Tensor | None = None
    inv_out: torch.Tensor | None = None
    inv_tgt: torch.Tensor | None = None
    uniq_e: torch.Tensor | None = None
    inv_e: torch.Tensor | None = None
    lw: torch.Tensor | None = None
    lw_tgt: torch.Tensor | None = None
    cb_t: torch.Tensor | None = None
    wB: torch.Tensor | None = None
    colmask: torch.Tensor | None = None
    drop_e: torch.Tensor | None = None
    drop_h: list[torch.Tensor | None] = field(default_factory=list)


class _EpochTrainer:
    """The training step loop of one GRU4Rec model (state: optimisers, sampler, constants).

    Work is prepared per block of steps, vectorised (item ids, reset masks, negatives, their
    de-duplication, dropout masks, logQ weights), so the step loop itself only slices block tensors
    and runs forward / backward / update; the loss is accumulated on the device (no per-step sync).
    """

    def __init__(self, model: GRU4Rec, train: Sessions, manual: bool | None = None) -> None:
        self.model = model
        self.cfg = cfg = model.config
        self.m = m = model.module
        self.dev = dev = model.device
        self.items = np.asarray(train.items, dtype=np.int64)
        n = train.n_items
        self.n = n
        counts = np.bincount(self.items, minlength=n).astype(np.float64)
        weights = counts**cfg.sample_alpha
        self.sampler = AliasSampler(weights, dev, model.seed + 1) if cfg.n_sample > 0 else None
        # training support: a target (any click but a session's first) or a possible sampled negative
        starts = np.zeros(len(self.items), dtype=bool)
        starts[np.asarray(train.offsets[:-1], dtype=np.int64)[np.diff(train.offsets) > 0]] = True
        sup = np.bincount(self.items[~starts], minlength=n) > 0
        if cfg.n_sample > 0:
            sup |= weights > 0
        self.support = torch.from_numpy(sup).to(dev)
        # logQ correction: targets come ~ pop, extra negatives ~ pop^alpha (official: P0[Y[M:]]**alpha)
        logc = torch.log(torch.from_numpy(np.maximum(counts, 1.0))).float().to(dev)
        self.logq_tgt = -cfg.logq * logc
        self.logq_smp = -cfg.logq * cfg.sample_alpha * logc
        self.row_opt = _RowOptimizer(m.W3, cfg)
        self.e_opt = _RowOptimizer(m.E3, cfg) if m.E3 is not None else None
        self.dense_opt = _DenseOptimizer(m.dense_params(), cfg)
        B, S = cfg.batch_size, cfg.n_sample
        self.offdiag = torch.ones(B, B + S, device=dev)
        self.offdiag[:, :B].fill_diagonal_(0.0)
        self.block = max(1, min(1024, cfg.sample_cache_max_size // max(S, 1)))
        # the default configuration (cross-entropy, constrained embedding) runs a hand-written
        # backward pass (no autograd graph per step); other configurations use autograd
        can = cfg.loss == "cross-entropy" and m.E3 is None
        self.manual = can if manual is None else (manual and can)
        d = cfg.layers[-1]
        self.n_in = d if cfg.constrained_embedding else (cfg.embedding if cfg.embedding > 0 else 3 * cfg.layers[0])
        self.H: list[torch.Tensor] = []

    def _dropout_masks(self, K: int, width: int, p: float) -> torch.Tensor | None:
        if p <= 0:
            return None
        return (torch.rand(K, self.cfg.batch_size, width, device=self.dev) >= p).float().div_(1.0 - p)

    def blocks(self, sched: ParallelSchedule) -> Iterator[_Block]:
        """One epoch: the hidden state starts at zero, then each block of steps is prepared in turn."""
        self.H = [torch.zeros(self.cfg.batch_size, h, device=self.dev) for h in self.cfg.layers]
        for a in range(0, sched.n_steps, self.block):
            yield self._prepare(sched, a, min(a + self.block, sched.n_steps))

    def step(self, blk: _Block) -> Step:
        """Run the block's steps; the loss stays on the device (no host sync)."""
        loss = self._manual_block(blk) if self.manual else self._autograd_block(blk)
        return Step(loss, blk.K, blk.events)

    def _prepare(self, sched: ParallelSchedule, a: int, b: int) -> _Block:
        """Steps ``a:b``, vectorised: item ids, reset masks, negatives, the step's distinct output rows
        (inputs when constrained, targets, negatives), loss terms and dropout masks."""
        cfg, m, dev = self.cfg, self.m, self.dev
        B, S = cfg.batch_size, cfg.n_sample
        K = b - a
        inp = sched.inputs[a:b]
        idle = inp < 0
        safe = np.where(idle, 0, inp)
        in_items = torch.from_numpy(np.where(idle, 0, self.items[safe])).to(dev)
        tgt_items = torch.from_numpy(np.where(idle, 0, self.items[np.where(idle, 0, inp + 1)])).to(dev)
        idle_t = torch.from_numpy(idle).to(dev)
        blk = _Block(
            K=K,
            events=int((~idle).sum()),
            idle=idle_t,
            live=(~idle_t).float(),
            keep=(~torch.from_numpy(sched.reset[a:b]).to(dev)).float()[:, :, None],
            partial=idle.any(axis=1).tolist(),  # host-side flags, known before the loop
        )
        samples = self.sampler.sample((K, S)) if S > 0 else tgt_items[:, :0]
        # the output table's rows of a step: [inputs (constrained only) | targets | negatives]
        parts = ([in_items] if m.E is None else []) + [tgt_items, samples]
        blk.uniq, inv = coalesce_rows(torch.cat(parts, 1), self.n)
        off = B if m.E is None else 0
        blk.inv_in = inv[:, :B] if m.E is None else None
        blk.inv_out = inv[:, off:]
        blk.inv_tgt = inv[:, off : off + B]
        if m.E is not None:
            blk.uniq_e, blk.inv_e = coalesce_rows(in_items, self.n)
        if cfg.loss == "cross-entropy":
            self._xe_terms(blk, tgt_items, samples)
        else:
            blk.colmask = torch.cat([blk.live, torch.ones(K, S, device=dev)], 1)
        blk.drop_e = self._dropout_masks(K, self.n_in, cfg.dropout_p_embed)
        blk.drop_h = [self._dropout_masks(K, h, cfg.dropout_p_hidden) for h in cfg.layers]
        return blk

    def _xe_terms(self, blk: _Block, tgt_items: torch.Tensor, samples: torch.Tensor) -> None:
        """Log of the summed correction weights of the columns sharing an item: the softmax over all
        B+S columns equals a softmax over the distinct items with these offsets."""
        cfg, dev = self.cfg, self.dev
        K, B, S = blk.K, cfg.batch_size, cfg.n_sample
        cb_t = self.logq_tgt[tgt_items] if cfg.logq > 0 else torch.zeros(K, B, device=dev)
        cb_s = self.logq_smp[samples] if cfg.logq > 0 else torch.zeros(K, S, device=dev)
        w = torch.cat([torch.exp(cb_t) * blk.live, torch.exp(cb_s)], 1)
        blk.lw = torch.log(torch.zeros(blk.uniq.shape, device=dev).scatter_add_(1, blk.inv_out, w))
        blk.cb_t = cb_t * blk.live  # constant offset of the reported loss; 0 on idle rows
        blk.lw_tgt = blk.lw.gather(1, blk.inv_tgt)
        blk.wB = blk.live / B  # official: summed loss / batch_size

    @staticmethod
    def _xe_block_loss(blk: _Block, tgt_ls: torch.Tensor) -> torch.Tensor:
        # loss_i = log-sum-exp - target score - its logQ term = lw[tgt] - cb_t - ls[tgt]
        # idle rows are dropped with where, not a 0 weight: their target column may be -inf
        return (torch.where(blk.idle, 0.0, blk.lw_tgt - blk.cb_t - tgt_ls) * blk.wB).sum()

    def _manual_block(self, blk: _Block) -> torch.Tensor:
        # per-step views made once per block (unbind), not by one indexing op per tensor per step
        nones = [None] * blk.K
        steps = zip(
            blk.keep.unbind(0), blk.uniq.unbind(0), blk.inv_in.unbind(0), blk.inv_tgt[:, :, None].unbind(0),
            blk.lw.unbind(0), blk.wB[:, :, None].unbind(0),
            nones if blk.drop_e is None else blk.drop_e.unbind(0),
            zip(*[nones if dm is None else dm.unbind(0) for dm in blk.drop_h], strict=True),
            strict=True,
        )  # fmt: skip
        gathered: list[torch.Tensor] = []
        H = self.H
        for kp, un, ii, it, lwt, wbt, de, dh in steps:
            H = self._manual_step(H, kp, un, ii, it, lwt, wbt, gathered, de, list(dh))
        self.H = H
        return self._xe_block_loss(blk, torch.stack(gathered))

    def _autograd_block(self, blk: _Block) -> torch.Tensor:
        xe = self.cfg.loss == "cross-entropy"
        tgt_ls = torch.zeros(blk.K, self.cfg.batch_size, device=self.dev) if xe else None
        loss_sum = torch.zeros((), device=self.dev)
        H = self.H
        for t in range(blk.K):
            H, loss = self._autograd_step(blk, t, H, tgt_ls)
            if loss is not None:
                loss_sum += loss
        self.H = H
        return self._xe_block_loss(blk, tgt_ls) if xe else loss_sum

    def _autograd_step(
        self, blk: _Block, t: int, H: list[torch.Tensor], tgt_ls: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """One step through autograd (the GRU always; the output layer too for the ranking losses)."""
        m, dev = self.m, self.dev
        d = self.cfg.layers[-1]
        H = [h * blk.keep[t] for h in H]  # new session in the slot -> zero state
        st = m.W3.index_select(0, blk.uniq[t])  # [U, 3, d+1]: weights + optimiser state
        Gu = st[:, 0]
        if tgt_ls is None:
            Gu.requires_grad_()
        if m.E is None:
            # own leaf for the B input rows (read from the gathered block): its small gradient
            # is added into Gu's below, cheaper than autograd scattering into a zero [U, d+1]
            x = xl = Gu.detach().index_select(0, blk.inv_in[t])[:, :d].requires_grad_()
        else:
            st_e = m.E3.index_select(0, blk.uniq_e[t])
            Ge = st_e[:, 0].requires_grad_()
            x = Ge.index_select(0, blk.inv_e[t])
        for p in self.dense_opt.params:
            p.grad = None
        with autocast(dev):
            if blk.drop_e is not None:
                x = x * blk.drop_e[t]
            H = m.hidden_step(x, H, [None if dm is None else dm[t] for dm in blk.drop_h])
            h1 = F.pad(H[-1], (0, 1), value=1.0)  # the item bias is the ones column
        loss = None
        if tgt_ls is not None:
            g = self._xe_backward(blk, t, h1, Gu, H[-1], tgt_ls)
        else:
            L = self._ranking_loss(blk, t, h1 @ Gu.t()) / self.cfg.batch_size  # official: summed / batch
            L.backward()
            g = Gu.grad
            loss = L.detach()
        self.dense_opt.step()
        if m.E is None:
            g[:, :d].index_add_(0, blk.inv_in[t], xl.grad)
        self.row_opt.step(blk.uniq[t], st, g)
        if m.E is not None:
            self.e_opt.step(blk.uniq_e[t], st_e, Ge.grad)
        return [h.detach() for h in H], loss

    def _xe_backward(
        self, blk: _Block, t: int, h1: torch.Tensor, Gu: torch.Tensor, top: torch.Tensor, tgt_ls: torch.Tensor
    ) -> torch.Tensor:
        """Output layer + sampled softmax by hand (closed-form gradient), autograd only through the GRU:
        a third of the graph nodes per step. Returns the output rows' gradient."""
        d = self.cfg.layers[-1]
        with torch.no_grad(), autocast(self.dev):
            h1d = h1.detach()
            ls = torch.log_softmax(torch.addmm(blk.lw[t], h1d, Gu.t()).float(), 1)  # [B, U]
            tgt_ls[t] = ls.gather(1, blk.inv_tgt[t][:, None])[:, 0]
            dS = ls.exp_().mul_(blk.wB[t][:, None])
            dS.scatter_add_(1, blk.inv_tgt[t][:, None], -blk.wB[t][:, None])  # softmax - onehot
            g = (dS.t() @ h1d).float()  # [U, d+1]
            g_h = (dS @ Gu[:, :d]).to(top.dtype)
        top.backward(g_h)
        return g

    def _ranking_loss(self, blk: _Block, t: int, Ru: torch.Tensor) -> torch.Tensor:
        """BPR-max / TOP1-max / BPR / TOP1 of step ``t``'s scores ``Ru`` [B, U] over its B + S columns."""
        cfg = self.cfg
        R = Ru.index_select(1, blk.inv_out[t])
        nm = self.offdiag * blk.colmask[t] if blk.partial[t] else self.offdiag
        live = blk.live[t]
        if cfg.loss == "bpr-max":
            return bpr_max_loss(R, nm, live, cfg.bpreg, cfg.elu_param)
        if cfg.loss == "top1-max":
            return top1_max_loss(R, nm, live)
        if cfg.loss == "bpr":
            return bpr_loss(R, nm, live)
        return top1_loss(R, nm, live)

    def _manual_step(
        self,
        H: list[torch.Tensor],
        keep: torch.Tensor,
        uniq: torch.Tensor,
        inv_in: torch.Tensor,
        inv_tgt: torch.Tensor,
        lw: torch.Tensor,
        wB: torch.Tensor,
        gathered: list[torch.Tensor],
        drop_e: torch.Tensor | None,
        drop_h: list[torch.Tensor | None],
    ) -> list[torch.Tensor]:
        """One cross-entropy step with a closed-form backward pass (constrained embedding).

        Same maths as the autograd path (torch GRU cell, dropout on outputs, 1-step BPTT, sampled
        softmax over the step's distinct items), written out so that no graph is built per step.
        """
        m, dev = self.m, self.dev
        d = self.cfg.layers[-1]
        with torch.no_grad(), autocast(dev):
            st = m.W3.index_select(0, uniq)  # [U, 3, d+1]: weights + optimiser state
            Gu = st[:, 0]
            x = Gu.index_select(0, inv_in)[:, :d]
            if drop_e is not None:
                x = x * drop_e
            saved = []
            newH = []
            for li in range(len(m.w_ih)):
                hs = H[li].shape[1]
                hp = H[li] * keep  # new session in the slot -> zero state
                # matmuls in bf16 under CUDA autocast, the gate arithmetic in float32
                gi = torch.addmm(m.b_ih[li], x, m.w_ih[li].t()).float()
                gh = torch.addmm(m.b_hh[li], hp, m.w_hh[li].t()).float()
                rz = torch.sigmoid(gi[:, : 2 * hs] + gh[:, : 2 * hs])
                ghn = gh[:, 2 * hs :]
                n = torch.tanh(torch.addcmul(gi[:, 2 * hs :], rz[:, :hs], ghn))
                out = torch.lerp(n, hp, rz[:, hs:])  # (1 - z) n + z h
                if drop_h[li] is not None:
                    out = out * drop_h[li]
                saved.append((x, hp, rz, n, ghn))
                newH.append(out)
                x = out
            h1 = F.pad(x, (0, 1), value=1.0)  # the item bias is the ones column
            ls = torch.log_softmax(torch.addmm(lw, h1, Gu.t()).float(), 1)  # [B, U]
            gathered.append(ls.gather(1, inv_tgt)[:, 0])  # target log-probabilities, for the epoch loss
            dS = ls.exp_().mul_(wB)  # inv_tgt, wB: [B, 1]
            dS.scatter_add_(1, inv_tgt, wB.neg())  # d loss / d scores = softmax - onehot
            g = (dS.t() @ h1).float()  # [U, d+1]
            gx, dense_grads = self._gru_backward(saved, (dS @ Gu[:, :d]).float(), drop_h)
            if drop_e is not None:
                gx = gx * drop_e
            g[:, :d].index_add_(0, inv_in, gx.float())
        self.dense_opt.step(dense_grads)
        self.row_opt.step(uniq, st, g)
        return newH

    def _gru_backward(
        self, saved: list[tuple[torch.Tensor, ...]], gx: torch.Tensor, drop_h: list[torch.Tensor | None]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The GRU stack's closed-form backward pass of one step, top layer first: (gradient of the
        input embedding, gradients in the parameter order of ``GRU4RecNet.dense_params()``)."""
        m = self.m
        g_ih, g_hh, gb_ih, gb_hh = [], [], [], []
        for li in reversed(range(len(m.w_ih))):
            xl, hp, rz, n, ghn = saved[li]
            hs = hp.shape[1]
            if drop_h[li] is not None:
                gx = gx * drop_h[li]
            z = rz[:, hs:]
            dn = gx - gx * z
            dz = gx * (hp - n)
            dnp = dn * (1 - n * n)
            drz = torch.cat([dnp * ghn, dz], 1) * rz * (1 - rz)
            dgi = torch.cat([drz, dnp], 1)
            dgh = torch.cat([drz, dnp * rz[:, :hs]], 1)
            g_ih.append((dgi.t() @ xl).float())
            g_hh.append((dgh.t() @ hp).float())
            gb_ih.append(dgi.sum(0).float())
            gb_hh.append(dgh.sum(0).float())
            gx = (dgi @ m.w_ih[li]).float()
        # parameter order of GRU4RecNet.dense_params(): w_ih..., w_hh..., b_ih..., b_hh...
        return gx, g_ih[::-1] + g_hh[::-1] + gb_ih[::-1] + gb_hh[::-1]
