"""Launch data-parallel Mult-VAE / Mult-DAE training (``recmodels.distributed``) on one or more processes.

Two ways to run it:

* Local processes (CPU, gloo; or one process per GPU, nccl), started here with
  ``torch.multiprocessing.spawn`` on ``MASTER_ADDR=127.0.0.1`` and a free port::

      python -m tasks.tools.train_ddp --nproc 2 --synthetic 5000 2000 --epochs 5 --out /tmp/ddp

* A GPU box (or several) with torchrun, which starts the processes and sets RANK / WORLD_SIZE /
  LOCAL_RANK / MASTER_ADDR / MASTER_PORT itself; this module then joins that group (``env://``)::

      torchrun --standalone --nproc_per_node=8 -m tasks.tools.train_ddp --matrix train.npz \\
          --model multvae --batch-size 4096 --epochs 50 --out /models/multvae-ddp

  (several nodes: ``torchrun --nnodes=2 --node_rank=K --rdzv_backend=c10d
  --rdzv_endpoint=HOST:29400 --nproc_per_node=8 -m tasks.tools.train_ddp ...`` on each node).

``--batch-size`` is the global batch (split across the processes), so the same flags give the same
optimisation whatever the number of processes. ``--matrix`` is a users x items ``scipy.sparse``
``.npz`` (``scipy.sparse.save_npz``). Rank 0 writes the checkpoint (``MultVAE.load`` reads it) and
``losses.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recmodels.data import Interactions
from recmodels.distributed import DDP_MODELS, DDPResult, train_mult_ddp

MASTER_ADDR = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback now (the OS picks it; tiny race until the group binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((MASTER_ADDR, 0))
        return int(s.getsockname()[1])


def _cores() -> int:
    """Cores this process may run on (the affinity mask; cpu_count can report the whole host)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pick_backend(backend: str, nproc: int) -> str:
    """``auto``: nccl when there is one GPU per process, else gloo (CPU)."""
    if backend != "auto":
        return backend
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= nproc else "gloo"


def _worker(
    rank: int,
    world: int,
    port: int,
    backend: str,
    matrix: sp.csr_matrix,
    model_name: str,
    config: Any,
    seed: int,
    result_path: str,
) -> None:
    """One spawned process: join the group, train, rank 0 writes the result for the parent."""
    os.environ.update(
        MASTER_ADDR=MASTER_ADDR,
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    if backend == "gloo":
        # the processes share the machine's cores: without this each would start cpu_count threads
        torch.set_num_threads(max(1, _cores() // world))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        res = train_mult_ddp(matrix, model_name, config, seed, local_rank=rank)
        if rank == 0:
            torch.save(_payload(res), result_path)
        # No rank tears gloo down while another is still inside a collective: that race aborted a
        # worker ("terminate called without an active exception") on a loaded CI box.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _payload(res: DDPResult) -> dict[str, Any]:
    return {
        "losses": res.losses,
        "batch_sizes": res.batch_sizes,
        "world_size": res.world_size,
        "max_weight_diff": res.max_weight_diff,
        "state": res.state,
    }


def _rebuild(
    model_name: str, config: Any, seed: int, shape: tuple[int, int], state: dict[str, torch.Tensor]
) -> Any:
    """The trained model in this process, from rank 0's weights (CPU)."""
    model = DDP_MODELS[model_name](config=config, device="cpu", seed=seed)
    model.n_users, model.n_items = shape
    model.module = model._build(*shape)
    model.module.load_state_dict(state)
    model.module.eval()
    return model


def launch_local(
    train: Interactions | sp.csr_matrix,
    model_name: str = "multvae",
    config: Any = None,
    nproc: int = 2,
    seed: int = 0,
    backend: str = "auto",
) -> DDPResult:
    """Train on ``nproc`` local processes (``mp.spawn``); returns rank 0's result with the model rebuilt on CPU."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    backend = pick_backend(backend, nproc)
    matrix = train.matrix if isinstance(train, Interactions) else sp.csr_matrix(train)
    with tempfile.TemporaryDirectory(prefix="clickrec-ddp-") as tmp:
        result_path = str(Path(tmp) / "rank0.pt")
        mp.spawn(
            _worker,
            args=(nproc, free_port(), backend, matrix, model_name, config, seed, result_path),
            nprocs=nproc,
            join=True,
        )
        payload = torch.load(result_path, weights_only=True)
    res = DDPResult(**payload)
    res.model = _rebuild(model_name, config, seed, matrix.shape, res.state)
    return res


def synthetic_matrix(n_users: int, n_items: int, per_user: int = 20, seed: int = 0) -> sp.csr_matrix:
    """Binary users x items matrix with a popularity skew (Zipf-like item draws): smoke runs and tests."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rows = np.repeat(np.arange(n_users), per_user)
    cols = rng.choice(n_items, size=len(rows), p=weights / weights.sum())
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    m.data[:] = 1.0  # duplicates summed: back to binary
    return m


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tasks.tools.train_ddp",
        description=(
            "Data-parallel (DistributedDataParallel) Mult-VAE / Mult-DAE training. Local: --nproc N "
            "spawns N processes (gloo on CPU, nccl with one GPU each). GPU box: "
            "'torchrun --standalone --nproc_per_node=N -m tasks.tools.train_ddp ...' (torchrun sets "
            "RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; --nproc is then ignored)."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--matrix", type=Path, help="users x items scipy.sparse .npz (save_npz)")
    src.add_argument("--synthetic", nargs=2, type=int, metavar=("USERS", "ITEMS"), help="random skewed data")
    p.add_argument("--model", choices=sorted(DDP_MODELS), default="multvae")
    p.add_argument("--nproc", type=int, default=2, help="local processes (ignored under torchrun)")
    p.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--batch-size", type=int, default=512, help="global batch size (users), split across ranks"
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=None, help="input dropout (model default when omitted)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="rank 0 writes the checkpoint and losses.json here")
    return p.parse_args(argv)


def _write_out(out: Path, res: DDPResult) -> None:
    assert res.model is not None
    out.mkdir(parents=True, exist_ok=True)
    res.model.save(out / "model", extra_meta={"ddp_world_size": res.world_size})
    (out / "losses.json").write_text(
        json.dumps({"world_size": res.world_size, "losses": res.losses, "batch_sizes": res.batch_sizes})
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    matrix = (
        sp.load_npz(args.matrix).tocsr() if args.matrix else synthetic_matrix(*args.synthetic, seed=args.seed)
    )
    config: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    if args.dropout is not None:
        config["dropout"] = args.dropout
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun: join its group
        world = int(os.environ["WORLD_SIZE"])
        dist.init_process_group(pick_backend(args.backend, int(os.environ.get("LOCAL_WORLD_SIZE", world))))
        try:
            res = train_mult_ddp(matrix, args.model, config, args.seed, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
            if dist.get_rank() == 0:
                _report(res, args.out)
        finally:
            dist.destroy_process_group()
        return 0
    res = launch_local(matrix, args.model, config, nproc=args.nproc, seed=args.seed, backend=args.backend)
    _report(res, args.out)
    return 0


def _report(res: DDPResult, out: Path | None) -> None:
    if out is not None:
        _write_out(out, res)
    first, last = (res.losses[0], res.losses[-1]) if res.losses else (float("nan"), float("nan"))
    print(
        f"world_size={res.world_size} steps={len(res.losses)} loss {first:.4f} -> {last:.4f} "
        f"max_weight_diff={res.max_weight_diff:.2e}" + (f" out={out}" if out else "")
    )


if __name__ == "__main__":
    raise SystemExit(main())
