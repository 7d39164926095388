"""Training / inference throughput of the session models, against the machine's measured matmul peak.

``bench_session_train(model, data_dir, epochs, synthetic_clicks)`` trains ``model`` ("gru4rec" or
"narm") with its default settings on P1's rsc15-100k training set and on a synthetic log of
``synthetic_clicks`` clicks (``tasks.tools.synth.generate_sessions``; 0 skips it), and reports:

- ``train_events_per_s``: training events (predictions) per second over the timed epochs (wall
  clock; ``train_events_per_cpu_s`` divides by the process's CPU time instead, steadier on a
  shared machine, includes setup such as the sampler build);
- ``infer_sessions_per_s``: sessions scored per second by ``score_next`` (every prefix, full ranking
  scores over all items), batches of ``infer_batch`` sessions;
- ``train_gflops`` / ``roofline_share``: matmul FLOP/s implied by the model's own FLOP count per
  event, as a share of ``tasks.tools.roofline.matmul_peak_gflops()`` measured in the same run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recmodels.data import Sessions
from recmodels.device import pick_device
from tasks.common.settings import get_settings
from tasks.tools.roofline import matmul_peak_gflops
from tasks.tools.train_session import train_session_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _infer_rate(model: Any, sessions: Sessions, infer_batch: int) -> float:
    """Sessions per second of ``score_next`` over ``sessions``, ``infer_batch`` consecutive sessions per call."""
    n = sessions.n_sessions
    if n == 0:
        return 0.0
    t0 = time.perf_counter()
    for a in range(0, n, infer_batch):
        b = min(a + infer_batch, n)
        lo, hi = int(sessions.offsets[a]), int(sessions.offsets[b])
        part = Sessions(
            items=sessions.items[lo:hi], offsets=sessions.offsets[a : b + 1] - lo, n_items=sessions.n_items
        )
        model.score_next(part)
    _sync(model.device)
    return n / (time.perf_counter() - t0)


def bench_one(
    model: str,
    train: Sessions,
    test: Sessions | None,
    epochs: int,
    params: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    infer_batch: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Throughput of one training run (``epochs`` epochs) and of inference on ``test`` (or ``train``)."""
    dev = pick_device(device or get_settings().device)  # CLICKREC_DEVICE when no argument
    p = {**(params or {}), "epochs": epochs}
    c0 = time.process_time()
    rec, report = train_session_model(model, train, None, p, seed=seed, device=dev)
    _sync(dev)
    cpu_s = time.process_time() - c0  # on a shared CPU machine this is steadier than wall time
    ev_s = report.train_events / max(report.train_seconds, 1e-9)
    gflops = rec.flops_per_train_event() * ev_s / 1e9
    infer_on = test if test is not None else train
    return {
        "train_events": int(report.train_events),
        "train_seconds": report.train_seconds,
        "train_events_per_s": ev_s,
        "train_events_per_cpu_s": report.train_events / max(cpu_s, 1e-9),
        "epoch_seconds": [h["seconds"] for h in report.history],
        "train_gflops": gflops,
        "infer_sessions_per_s": _infer_rate(rec, infer_on, infer_batch),
        "n_items": train.n_items,
        "config": rec.config_dict(),
    }


def bench_session_train(
    model: str = "gru4rec",
    data_dir: str | Path | None = None,
    epochs: int = 1,
    synthetic_clicks: int = 10_000_000,
    synthetic: Sessions | None = None,
    device: str | torch.device | None = None,
    params: dict[str, Any] | None = None,
    synthetic_items: int = 20_000,
    print_result: bool = False,
) -> dict[str, Any]:
    """Benchmark ``model`` on rsc15-100k (P1 train / test) and on a synthetic log; returns (and prints) JSON.

    ``synthetic`` (a ``Sessions``) replaces the generated log; ``synthetic_clicks=0`` skips it.
    Top-level ``train_events_per_s`` is the rsc15-100k figure (the acceptance number).
    """
    from tasks.tools.protocol_data import load_p1

    dev = pick_device(device or get_settings().device)  # CLICKREC_DEVICE when no argument
    peak = matmul_peak_gflops(dev)
    result: dict[str, Any] = {
        "model": model,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "epochs": epochs,
        "matmul_peak_gflops": peak,
    }
    train, test, _ = load_p1(Path(data_dir) if data_dir is not None else None)
    r = bench_one(model, train, test, epochs, params, dev)
    r["roofline_share"] = r["train_gflops"] / peak
    result["rsc15_100k"] = r
    result["train_events_per_s"] = r["train_events_per_s"]
    result["infer_sessions_per_s"] = r["infer_sessions_per_s"]
    if synthetic is None and synthetic_clicks > 0:
        from tasks.tools.synth import generate_sessions

        t0 = time.perf_counter()
        synthetic = generate_sessions(synthetic_clicks, n_items=synthetic_items, seed=0)
        result["synthetic_generate_seconds"] = time.perf_counter() - t0
    if synthetic is not None:
        # last 5% of the sessions for inference, the rest for training (time order)
        cut = int(synthetic.n_sessions * 0.95)
        idx = np.arange(synthetic.n_sessions)
        s = bench_one(model, synthetic.subset(idx < cut), synthetic.subset(idx >= cut), epochs, params, dev)
        s["roofline_share"] = s["train_gflops"] / peak
        s["clicks"] = int(len(synthetic.items))
        result["synthetic"] = s
    if print_result:
        print(json.dumps(result, indent=2, default=str))
    return result
