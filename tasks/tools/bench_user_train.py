"""Training / scoring / similarity throughput of one user model, on ml-100k and on a synthetic log.

``bench_user_train(model, data_dir, epochs, synthetic_users, synthetic_items) -> dict`` reports, per
data set: training samples/s and seconds per epoch, users/s of top-N scoring (chunked, seen items
masked), items/s and seconds of the cosine top-50 similarity table, achieved GFLOP/s (FLOPs counted
by ``torch.utils.flop_counter`` on one real batch / scoring block, times the measured rate) as a
share of ``tasks.tools.roofline.matmul_peak_gflops`` measured in the same run, and the process's peak RSS.

The synthetic log (``synthetic_interactions``) is a users x items CSR with heavy-tailed user
activity and Zipf-like item popularity, generated with numpy in O(nnz) memory. On a CPU the
synthetic run trains a bounded number of batches and scores a sample of users (the rates are what
is measured; a full 100k x 50k epoch is a GPU job); on CUDA it runs full epochs.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.flop_counter import FlopCounterMode

from recmodels.data import Interactions
from recmodels.device import autocast, pick_device, seed_everything, uses_bf16
from recmodels.registry import create
from recmodels.similarity import cosine_topk
from recmodels.user_training import TorchUserModel, topn_users
from tasks.common.settings import get_settings
from tasks.tools.roofline import matmul_peak_gflops
from tasks.tools.train_user import default_params


def synthetic_interactions(
    n_users: int, n_items: int, mean_per_user: float = 20.0, zipf: float = 0.9, seed: int = 0
) -> Interactions:
    """Binary users x items log with popularity skew: activity ~ lognormal, item p ~ 1/(rank + 10)^zipf."""
    rng = np.random.default_rng(seed)
    sigma = 1.0
    per_user = rng.lognormal(np.log(mean_per_user) - sigma**2 / 2, sigma, n_users)
    per_user = np.clip(np.rint(per_user), 1, n_items).astype(np.int64)
    p = 1.0 / (np.arange(n_items) + 10.0) ** zipf
    p /= p.sum()
    items = rng.permutation(n_items)[rng.choice(n_items, size=int(per_user.sum()), p=p)]  # popular ids scattered
    users = np.repeat(np.arange(n_users), per_user)
    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return Interactions(m)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_flops_per_sample(model: TorchUserModel) -> float:
    """FLOPs of one optimiser step's forward + backward on a real batch, per sample."""
    gen = seed_everything(123)
    batch = next(iter(model._epoch_batches(gen)))
    counter = FlopCounterMode(display=False)
    model.module.train()
    with counter:
        with autocast(model.device, model._precision()):
            loss = model._loss(batch)
        loss.backward()
    model.module.zero_grad(set_to_none=True)
    return counter.get_total_flops() / max(model._batch_size(batch), 1)


def _bench_one(
    name: str,
    train: Interactions,
    epochs: int,
    device: torch.device,
    peak: float,
    max_batches: int | None,
    score_users_max: int | None,
    sim_k: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cfg = {**default_params(name, train), **(overrides or {}), "epochs": epochs, "patience": epochs + 1}
    # Untimed: the first optimiser of a process imports torch._dynamo (~2.5 s, once per process, not
    # per epoch), and the first matmuls initialise oneDNN; neither belongs in a per-epoch figure.
    t0 = time.perf_counter()
    warm = create(name, config={**cfg, "epochs": 1}, device=device, seed=0)
    assert isinstance(warm, TorchUserModel)
    warm.max_batches_per_epoch = 2
    warm.fit(train, None)
    process_warmup_s = time.perf_counter() - t0
    model = create(name, config=cfg, device=device, seed=0)
    assert isinstance(model, TorchUserModel)
    model.max_batches_per_epoch = max_batches
    _sync(device)
    t0 = time.perf_counter()
    report = model.fit(train, None)
    _sync(device)
    train_s = time.perf_counter() - t0
    samples_s = report.train_events / max(train_s, 1e-9)
    flops_sample = _train_flops_per_sample(model)
    n_samples_epoch = _samples_per_epoch(model, train)
    out: dict[str, Any] = {
        "n_users": train.n_users,
        "n_items": train.n_items,
        "nnz": int(train.matrix.nnz),
        "epochs": report.epochs,
        "config": model.config_dict(),
        "process_warmup_seconds": process_warmup_s,
        "batches_per_epoch_cap": max_batches,
        "train_samples": report.train_events,
        "train_seconds": train_s,
        "train_samples_per_s": samples_s,
        "epoch_seconds": n_samples_epoch / max(samples_s, 1e-9),
        "samples_per_epoch": n_samples_epoch,
        "train_gflops": flops_sample * samples_s / 1e9,
        "train_peak_share": flops_sample * samples_s / 1e9 / peak,
        # the epoch's counted FLOPs at 100% of the measured matmul peak: roughly the fastest any
        # implementation of these settings could be here in this precision. Only as tight as the
        # peak (an n x n matmul, noisy run to run; some shapes run ~10% faster); uncounted work
        # (embedding bags, softmax, the optimiser) only adds to the real floor.
        "epoch_seconds_at_peak": flops_sample * n_samples_epoch / (peak * 1e9),
    }

    users = np.arange(train.n_users)
    if score_users_max is not None and len(users) > score_users_max:
        users = np.sort(np.random.default_rng(0).choice(len(users), score_users_max, replace=False))
    hist = train.matrix[users]
    counter = FlopCounterMode(display=False)
    with counter:
        model.score_users(users[: min(256, len(users))], hist[: min(256, len(users))])
    flops_user = counter.get_total_flops() / min(256, len(users))
    _sync(device)
    t0 = time.perf_counter()
    topn_users(model, users, hist, hist, n=50, chunk=1024)
    _sync(device)
    score_s = time.perf_counter() - t0
    out.update(
        score_users=len(users),
        score_seconds=score_s,
        score_users_per_s=len(users) / max(score_s, 1e-9),
        score_gflops=flops_user * len(users) / max(score_s, 1e-9) / 1e9,
    )
    out["score_peak_share"] = out["score_gflops"] / peak

    vec = model.item_vectors()
    if vec is not None:
        _sync(device)
        t0 = time.perf_counter()
        cosine_topk(vec.to(device), k=sim_k)
        _sync(device)
        sim_s = time.perf_counter() - t0
        n, d = vec.shape
        out.update(
            similarity_k=sim_k,
            similarity_dim=d,
            similarity_seconds=sim_s,
            similarity_items_per_s=n / max(sim_s, 1e-9),
            similarity_gflops=2.0 * n * n * d / max(sim_s, 1e-9) / 1e9,
        )
        out["similarity_peak_share"] = out["similarity_gflops"] / peak
    out["peak_rss_mb"] = _rss_mb()
    return out


def _samples_per_epoch(model: TorchUserModel, train: Interactions) -> int:
    """Samples one full epoch draws (independent of the batch cap)."""
    cfg = model.config
    m = sp.csr_matrix(train.matrix)
    if model.name in ("gmf", "mlp", "neumf"):  # positives + num_neg negatives each (BPR: pairs)
        return m.nnz * cfg.num_neg if cfg.loss == "bpr" else m.nnz * (1 + cfg.num_neg)
    if getattr(model, "item_based", False):  # I-AutoRec: one sample per item with a rating
        return int((m.getnnz(axis=0) > 0).sum())
    return int((m.getnnz(axis=1) > 0).sum())  # one sample per user with a history


def bench_user_train(
    model: str,
    data_dir: str | Path | None = None,
    epochs: int = 3,
    synthetic_users: int = 100_000,
    synthetic_items: int = 50_000,
    device: str | torch.device | None = None,
    max_batches: int | None = None,
    score_users_max: int | None = None,
    sim_k: int = 50,
    overrides: dict[str, Any] | None = None,
    peer: str | None = None,
) -> dict[str, Any]:
    """Benchmark ``model`` on ml-100k (P2 train split) and on a synthetic users x items log.

    ``peer="recbole"``: RecBole's own epoch on the same split is measured in the same run
    (``tasks.tools.bench_peer``) and ``speedup_vs_peer`` = its seconds per epoch / ours;
    ``speedup_vs_peer_at_peak`` is the same ratio against ``epoch_seconds_at_peak`` (our epoch's
    counted FLOPs at 100% of the measured matmul peak): roughly the most any implementation of
    these settings could reach on this machine in this precision, as tight as that peak measurement.

    ``max_batches`` / ``score_users_max`` bound the synthetic run (defaults: 30 batches and 4,000
    users on CPU, unbounded on CUDA); ml-100k always runs whole epochs and scores every user.
    ``synthetic_users=0`` skips the synthetic run. ``overrides`` set config values (e.g. another
    library's defaults, to compare at equal settings).
    """
    from tasks.tools.protocol_data import load_p2

    dev = pick_device(device or get_settings().device)  # CLICKREC_DEVICE when no argument
    precision = (overrides or {}).get("precision", "auto")
    bf16 = uses_bf16(dev, precision)
    peak = matmul_peak_gflops(dev, bf16=bf16)
    result: dict[str, Any] = {
        "model": model,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
        "matmul_peak_gflops": peak,
        "matmul_peak_gflops_fp32": matmul_peak_gflops(dev, bf16=False) if bf16 else peak,
        "epochs": epochs,
    }
    if peer not in (None, "recbole"):
        raise ValueError(f"--peer must be recbole, not {peer!r}")
    p2 = load_p2(Path(data_dir) if data_dir is not None else None)
    result["ml-100k"] = _bench_one(model, p2.train, epochs, dev, peak, None, None, sim_k, overrides)
    if peer is not None:
        from tasks.tools.bench_peer import peer_epoch_seconds
        from tasks.tools.protocol_data import default_data_dir

        result["peer"] = peer_epoch_seconds(model, Path(data_dir) if data_dir is not None else default_data_dir())
        result["speedup_vs_peer"] = result["peer"]["epoch_seconds"] / result["ml-100k"]["epoch_seconds"]
        # the ceiling of that ratio here: the peer's epoch against ours run at the matmul peak
        result["speedup_vs_peer_at_peak"] = result["peer"]["epoch_seconds"] / result["ml-100k"]["epoch_seconds_at_peak"]
    if synthetic_users > 0:
        cpu = dev.type != "cuda"
        t0 = time.perf_counter()
        syn = synthetic_interactions(synthetic_users, synthetic_items, seed=0)
        gen_s = time.perf_counter() - t0
        res = _bench_one(
            model,
            syn,
            1 if cpu else epochs,
            dev,
            peak,
            max_batches if max_batches is not None else (30 if cpu else None),
            score_users_max if score_users_max is not None else (4_000 if cpu else None),
            sim_k,
            overrides,
        )
        res["generate_seconds"] = gen_s
        result["synthetic"] = res
    result["peak_rss_mb"] = _rss_mb()
    return result
