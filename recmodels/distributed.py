"""Data-parallel training of Mult-VAE / Mult-DAE with torch.distributed (DistributedDataParallel).

The network, losses, annealing schedule and batch order are the ones of ``recmodels.autoencoders``:
a ``MultVAE`` / ``MultDAE`` instance builds the net (``_build``), the user set (``_prepare``) and
the *global* batches (``_epoch_batches`` on the same seeded generator as ``fit``), so one process
here walks exactly the batches of ``MultVAE.fit`` — through the same ``Trainer``, with the model's
hooks wrapped (``_DataParallel``). With ``W`` processes every rank draws the same
global batch and keeps its strided share ``batch[rank::W]`` (DistributedSampler's split, applied
per batch), so the union of the ranks' shards is the single-process batch.

Gradient equality. The model's loss is a mean over the batch's users plus an L2 term. A rank holding
``n_r`` of the global batch's ``n`` users multiplies its per-user mean by ``W * n_r / n``; DDP
averages gradients over ranks (divides the sum by ``W``), which then gives
``sum_r grad(sum of rank r's per-user losses) / n`` = the single-process gradient, also when the
shards differ in size (last batch) or a shard is empty. The L2 term is the same on every rank and
survives the average unchanged. Identical gradients + identical Adam state on every rank = the
single-process trajectory up to float summation order, *provided the forward pass is
deterministic*: input dropout and the VAE's reparameterisation noise draw from each process's own
RNG, so with ``dropout > 0`` (or the VAE's sampling) a W-process run is a different (equally valid)
random draw than a 1-process run, not the same numbers.

Pure torch: no prefect / duckdb here; the launchers are in ``tasks/tools/train_ddp.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scipy.sparse as sp
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from recmodels.autoencoders import MultDAE, MultVAE, gaussian_kl, multinomial_nll_sparse
from recmodels.base import Step
from recmodels.data import Interactions
from recmodels.device import autocast
from recmodels.trainer import Trainer

DDP_MODELS: dict[str, type[MultVAE]] = {"multvae": MultVAE, "multdae": MultDAE}
# Offset between the ranks' RNG streams for dropout / VAE noise (any large odd number; rank 0 keeps
# the seed's own stream, so a 1-process run draws exactly what MultVAE.fit draws).
_RANK_SEED_STRIDE = 1_000_003


@dataclass
class DDPResult:
    """What rank 0 hands back: the per-step global loss, and the trained model (unwrapped, on its device)."""

    losses: list[float]  # one per optimiser step: the loss of the whole global batch (all-reduced)
    batch_sizes: list[int]  # global batch size of each step (users)
    world_size: int
    max_weight_diff: float  # max |w_rank - w_rank0| over ranks and weights at the end (DDP keeps 0)
    model: MultVAE | None = field(default=None, repr=False)  # rank 0 only; None when sent between processes
    state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # final weights, CPU

    def epoch_losses(self, steps_per_epoch: int) -> list[float]:
        """Per-epoch user-weighted mean loss, as ``MultVAE.fit`` logs it (``history[i]["loss"]``)."""
        out = []
        for start in range(0, len(self.losses), steps_per_epoch):
            ls = self.losses[start : start + steps_per_epoch]
            bs = self.batch_sizes[start : start + steps_per_epoch]
            out.append(sum(loss * b for loss, b in zip(ls, bs, strict=True)) / max(sum(bs), 1))
        return out


def rank_device(backend: str, local_rank: int = 0) -> torch.device:
    """nccl: this process's GPU (``local_rank``: the launcher's ``LOCAL_RANK``, read by the caller, since
    recmodels reads no environment); gloo: the CPU."""
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s strided share of a global batch (sizes differ by at most one; union = batch)."""
    return batch[rank::world_size]


def _scaled_rank_loss(
    model: MultVAE, net: nn.Module, users: torch.Tensor, n_global: int, world_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss to backpropagate, detached sum of this rank's per-user losses, detached L2 term).

    ``net`` is the DDP wrapper (its forward arms the gradient all-reduce) or the bare module.
    """
    assert model._train is not None
    x = model._train.sparse_rows(users)
    logits, mu, logvar = net(x)
    n_local = len(users)
    if n_local == 0:
        # Empty shard (last batch smaller than the world): DDP still needs this rank's backward, and
        # every parameter must get a (zero) gradient, or the all-reduce would wait forever.
        per_user = logits.sum() * 0.0 + mu.sum() * 0.0 + (0.0 if logvar is None else logvar.sum() * 0.0)
    else:
        per_user = multinomial_nll_sparse(logits, x)
        if model.variational:
            per_user = per_user + model.beta() * gaussian_kl(mu, logvar)
    loss = per_user * (world_size * n_local / n_global)
    bare = model.module
    assert bare is not None
    reg = torch.zeros((), device=loss.device)
    if model.config.l2 > 0:
        reg = model.config.l2 * bare.weight_sq()  # the same on every rank: the average keeps it
        loss = loss + reg
    return loss, per_user.detach().float() * n_local, reg.detach().float()


class _DataParallel:
    """The ``TrainedModel`` hooks of Mult-VAE / Mult-DAE with the module wrapped in DDP: the set-up is
    the model's own (``begin_fit``: seed, net, warm start, user set, Adam), then the rank's own noise
    stream and the wrapper; each step trains on the rank's share of the global batch. Mixed in
    before the model class, so ``Trainer.fit`` runs it like any model."""

    rank: int = 0
    world: int = 1

    def begin_fit(self, train: Interactions, warm_from: Path | None) -> None:
        super().begin_fit(train, warm_from)  # type: ignore[misc]
        self.net: nn.Module = self.module
        self.step_losses: list[torch.Tensor] = []
        self.batch_sizes: list[int] = []
        if self.rank > 0:
            torch.manual_seed(self.seed + _RANK_SEED_STRIDE * self.rank)  # independent dropout / VAE noise per rank
        if dist.is_available() and dist.is_initialized():
            dev = self.device
            ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None
            self.net = DistributedDataParallel(self.module, device_ids=ids)

    def train_step(self, batch: tuple[torch.Tensor]) -> Step:
        (users,) = batch
        n_global = len(users)
        with autocast(self.device):
            loss, local_sum, reg = _scaled_rank_loss(self, self.net, shard(users, self.rank, self.world), n_global, self.world)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP: gradients averaged over ranks here
        self.optimizer.step()
        self._on_step()  # annealing step counter, identical on every rank
        if self.net is not self.module:
            dist.all_reduce(local_sum)  # sum of per-user losses over the global batch
        # kept as tensors: no host sync per step (keeps the GPU queue full, as fit does)
        global_loss = local_sum / n_global + reg
        self.step_losses.append(global_loss)
        self.batch_sizes.append(n_global)
        return Step(global_loss * n_global, n_global, n_global)


class _DataParallelMultVAE(_DataParallel, MultVAE):
    pass


class _DataParallelMultDAE(_DataParallel, MultDAE):
    pass


_WRAPPED: dict[str, type[MultVAE]] = {"multvae": _DataParallelMultVAE, "multdae": _DataParallelMultDAE}


def train_mult_ddp(
    train: Interactions | sp.csr_matrix,
    model_name: str = "multvae",
    config: Any = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    warm_from: str | Path | None = None,
    local_rank: int = 0,
) -> DDPResult:
    """Train Mult-VAE / Mult-DAE for ``config.epochs`` epochs, data-parallel over the process group.

    Call it in every process of an initialised ``torch.distributed`` group (gloo on CPU, nccl on
    CUDA: ``tasks/tools/train_ddp.py`` sets one up, or torchrun does); without a group it runs as one
    process and equals ``MultVAE.fit`` without validation. ``config.batch_size`` is the *global*
    batch size. The loop is ``recmodels.trainer.Trainer`` (``warm_from`` as in any fit); no
    validation / early stopping here: every epoch is run (evaluate the returned model afterwards).
    Returns the global per-step losses on every rank, the model on rank 0.
    """
    if model_name not in DDP_MODELS:
        raise ValueError(f"DDP training supports {sorted(DDP_MODELS)}, not {model_name!r}")
    matrix = train.matrix if isinstance(train, Interactions) else sp.csr_matrix(train)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if device is None:
        device = rank_device(dist.get_backend(), local_rank) if distributed else torch.device("cpu")
    model = _WRAPPED[model_name](config=config, device=device, seed=seed)
    model.rank, model.world = rank, world
    Trainer(model.config.epochs).fit(model, Interactions(matrix), None, warm_from)
    max_diff = _weight_divergence(model.module) if distributed else 0.0
    losses = model.step_losses
    return DDPResult(
        losses=[float(v) for v in torch.stack(losses).cpu()] if losses else [],
        batch_sizes=list(model.batch_sizes),
        world_size=world,
        max_weight_diff=max_diff,
        model=model if rank == 0 else None,
        state={k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()},
    )


def _weight_divergence(module: nn.Module) -> float:
    """Max |w - w_rank0| over all weights and ranks: a check that the replicas stayed in sync."""
    diff = torch.zeros((), device=next(module.parameters()).device)
    for p in module.parameters():
        ref = p.detach().clone()
        dist.broadcast(ref, src=0)
        diff = torch.maximum(diff, (p.detach() - ref).abs().max())
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)
