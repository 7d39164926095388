"""The machine's achieved matmul peak, measured in the same run as a benchmark (the roofline to compare to)."""

from __future__ import annotations

import time

import torch


def matmul_peak_gflops(
    device: str | torch.device = "cpu", n: int = 1024, repeats: int = 5, bf16: bool | None = None
) -> float:
    """Best-of-``repeats`` GFLOP/s of an ``n x n`` matmul in the precision training uses: bf16 on CUDA,
    fp32 on CPU unless ``bf16`` (a CPU model trained with ``precision="bf16"``)."""
    device = torch.device(device)
    if bf16 is None:
        bf16 = device.type == "cuda"
    dtype = torch.bfloat16 if bf16 else torch.float32
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
