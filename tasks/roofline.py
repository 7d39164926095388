"""The machine's achieved matmul peak, measured in the same run as a benchmark (the roofline to compare to)."""

from __future__ import annotations

import time

import torch


def matmul_peak_gflops(device: str | torch.device = "cpu", n: int = 1024, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of an ``n x n`` matmul (bf16 on CUDA, the precision training uses)."""
    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
