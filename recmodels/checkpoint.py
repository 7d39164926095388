"""Checkpoints: ``weights.pt`` (tensors only) + ``meta.json``, written to a temp dir and renamed.

Loading always uses ``torch.load(weights_only=True)``; a truncated or tampered file raises
``CheckpointError`` with one clear line instead of an unpickling traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be trusted (missing, truncated, tampered, wrong shape)."""


def save_checkpoint(directory: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically create ``directory`` with weights and meta; an existing one is replaced whole."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        cpu_state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        torch.save(cpu_state, tmp / "weights.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    directory = Path(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{directory}/meta.json: unreadable checkpoint metadata ({exc})") from None
    try:
        state = torch.load(directory / "weights.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an untrustworthy file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{directory}/weights.pt: cannot load checkpoint ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{directory}/weights.pt: not a tensor state_dict")
    return state, meta


def grow_rows(
    old: torch.Tensor, new_rows: int, init_std: float | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Copy an embedding-like tensor into one with ``new_rows`` rows (new items appended).

    New rows are drawn like the old ones (same std) unless ``init_std`` is given; old rows keep
    their values, so a model trained yesterday scores yesterday's items exactly as before. Pass a
    seeded ``generator``: the same checkpoint must grow the same way every time (a re-run night
    re-scores the champion and must reach the same gate decision).
    """
    if new_rows < old.shape[0]:
        raise CheckpointError(f"vocabulary shrank from {old.shape[0]} to {new_rows}: indices are never reassigned")
    if new_rows == old.shape[0]:
        return old.clone()
    std = float(old.float().std()) if init_std is None else init_std
    extra = torch.randn((new_rows - old.shape[0], *old.shape[1:]), generator=generator).to(old.dtype) * std
    return torch.cat([old, extra.to(old.device)], dim=0)
