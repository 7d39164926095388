"""Device choice and mixed precision: CUDA with bf16 autocast when present, CPU otherwise."""

from __future__ import annotations

import contextlib
import os

import torch


def pick_device(override: str | torch.device | None = None) -> torch.device:
    """``override`` > ``CLICKREC_DEVICE`` env > cuda if available > cpu."""
    choice = override or os.environ.get("CLICKREC_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on CPU (CPU bf16 matmuls are slower than fp32 on this class of machine)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a dedicated CPU generator for samplers."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
