"""Checkpoints: ``weights.pt`` (tensors only) + ``meta.json``, written to a temp dir and renamed.

Loading always uses ``torch.load(weights_only=True)``; a truncated or tampered file raises
``CheckpointError`` with one clear line instead of an unpickling traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import typing
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
    meta = read_meta(directory)
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


# --- validation: meta.json against a schema, tensor shapes against the configuration ------------------
MAX_META_BYTES = 1 << 20  # a meta.json larger than this is not one we wrote
MAX_JSON_DEPTH = 16
MAX_ROWS = 1 << 31  # no vocabulary or user table is this large
MAX_CONFIG_INT = 1 << 31


def _depth(x: Any, limit: int) -> int:
    """Nesting depth of a JSON value, iterative (no recursion on hostile input), stops past ``limit``."""
    stack, deepest = [(x, 1)], 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((c, d + 1) for c in v.values())
        elif isinstance(v, list):
            stack.extend((c, d + 1) for c in v)
    return deepest


def read_meta(directory: Path) -> dict[str, Any]:
    """``meta.json`` parsed, bounded in size and depth, and an object; otherwise a one-line CheckpointError."""
    path = Path(directory) / "meta.json"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint metadata ({type(exc).__name__})") from None
    if len(raw) > MAX_META_BYTES:
        raise CheckpointError(f"{path}: checkpoint metadata of {len(raw)} bytes, more than {MAX_META_BYTES}")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: unreadable checkpoint metadata ({msg})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is a {type(meta).__name__}, not an object")
    if _depth(meta, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: checkpoint metadata nested deeper than {MAX_JSON_DEPTH} levels")
    return meta


def _one_line(exc: Exception) -> str:
    errs = getattr(exc, "errors", None)
    if callable(errs):
        try:
            e = errs()[0]
            loc = ".".join(str(x) for x in e.get("loc", ())) or "value"
            return f"{loc}: {e.get('msg', '')}"
        except Exception:  # noqa: BLE001 - fall back to the message
            pass
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


# Checkpoints written before the one Trainer spelled GRU4Rec's / NARM's training settings the official
# code's way, with patience 0 for "no early stopping": read them under today's names (the settings
# only drive training; a loaded model scores with its weights).
_RENAMED = {"n_epochs": "epochs", "learning_rate": "lr"}


def _current_spelling(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {_RENAMED.get(k, k): v for k, v in cfg.items() if not (k in _RENAMED and _RENAMED[k] in cfg)}
    if out.get("patience") == 0:
        out["patience"] = None
    return out


def validate_meta(
    directory: Path,
    meta: dict[str, Any],
    model_name: str,
    config_cls: type,
    sizes: dict[str, int | None] | None = None,
) -> Any:
    """Check ``meta`` (already an object) and return the model's config dataclass built from it.

    Checked: ``model`` names ``model_name``; ``seed`` an integer in range; every key of ``sizes``
    (``n_items``, ``n_users``) a strict positive integer, at most the night's size when one is given
    (vocabularies only grow) and at most ``MAX_ROWS``; ``config`` an object whose keys are the
    dataclass's fields (extra keys refused), each value of the field's type (strict: no strings for
    numbers, no booleans for integers) and integers within ``[-1, MAX_CONFIG_INT]``.
    Any failure: ``CheckpointError`` with one line.
    """
    from pydantic import ConfigDict, StrictInt, TypeAdapter, ValidationError

    where = f"{directory}/meta.json"
    if meta.get("model") != model_name:
        raise CheckpointError(f"{directory}: checkpoint of {str(meta.get('model'))[:40]!r}, not {model_name!r}")
    seed = meta.get("seed", 0)
    if type(seed) is not int or not 0 <= seed < 1 << 63:
        raise CheckpointError(f"{where}: seed must be a non-negative integer, not {str(seed)[:40]!r}")
    for key, night in (sizes or {}).items():
        v = meta.get(key)
        try:
            TypeAdapter(StrictInt).validate_python(v)
        except ValidationError:
            raise CheckpointError(f"{where}: {key} must be an integer, not {str(v)[:40]!r}") from None
        bound = MAX_ROWS if night is None else min(int(night), MAX_ROWS)
        if not 1 <= v <= bound:
            raise CheckpointError(f"{where}: {key} = {v} outside [1, {bound}] (tonight's size)")
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: config must be an object, not {type(cfg).__name__}")
    cfg = _current_spelling(cfg)
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    extra = sorted(set(cfg) - fields)
    if extra:
        raise CheckpointError(f"{where}: unknown config keys {extra[:5]}")
    strict = ConfigDict(strict=True)
    for k, v in cfg.items():
        try:
            TypeAdapter(hints[k], config=strict).validate_json(json.dumps(v))
        except (ValidationError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: config.{k}: {_one_line(exc)}") from None
        ints = [v] if type(v) is int else [x for x in v if type(x) is int] if isinstance(v, list) else []
        if any(not -1 <= x <= MAX_CONFIG_INT for x in ints):
            raise CheckpointError(f"{where}: config.{k} = {str(v)[:40]} out of range")
    try:
        return config_cls(**cfg)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: config refused ({_one_line(exc)})") from None


def check_shapes(directory: Path, state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """The checkpoint's tensors are exactly ``expected`` (same keys, same shapes), before anything is copied:
    slice assignment would broadcast a one-row table over the whole vocabulary without complaint."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{directory}: weights do not fit the configuration (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, shape in expected.items():
        if tuple(state[k].shape) != tuple(shape):
            raise CheckpointError(
                f"{directory}: weights do not fit the configuration ({k} is {tuple(state[k].shape)}, expected {tuple(shape)})"
            )
        if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all()):
            raise CheckpointError(f"{directory}: weights do not fit the configuration ({k} holds NaN or inf)")


def module_shapes(build: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the state of the module ``build()`` makes, built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        net = build()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}
