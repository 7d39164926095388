"""Device choice and mixed precision: CUDA with bf16 autocast when present, CPU otherwise."""

from __future__ import annotations

import contextlib

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` when given, else cuda if available, else cpu. recmodels reads no environment: the
    pipeline passes its setting (``CLICKREC_DEVICE``, ``tasks.common.settings``) down as ``device``."""
    choice = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


PRECISIONS = ("auto", "fp32", "bf16")


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """Mixed precision for a training step or a scoring block.

    ``auto``: bf16 autocast on CUDA, fp32 on CPU. ``bf16``: bf16 autocast on any device; on a CPU
    with native bf16 matmuls (AVX512-BF16 / AMX) the big matmuls run ~3x faster than fp32, while a
    CPU without them emulates bf16 and is slower, so CPU bf16 is opt-in. ``fp32``: no autocast.
    Losses and final scores stay fp32 either way (see ``fp32_linear`` and the losses' ``.float()``).
    """
    if uses_bf16(device, precision):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether ``precision`` means bf16 matmuls on ``device`` (the rule ``autocast`` applies)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a dedicated CPU generator for samplers."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
