"""The night's training plan: which models a night trains, with which settings, and whether a cached
training result still stands.

``plan`` lists (registry name, family, label) from the night's config; ``night_jobs`` turns it into one
JSON-able job per model (the arguments of ``tasks.train.fit.train_one`` plus the bundle fingerprint,
so that new data is a new cache key), ``--only`` applied; ``outputs_exist`` tells whether a cached
result's files are still there.
"""

from __future__ import annotations

from pathlib import Path

from tasks.common.settings import get_settings
from tasks.features.bundle import bundle_meta


def plan(cfg: dict, meta: dict) -> list[tuple[str, str, str]]:
    """(registry name, family, label) of every model to train tonight."""
    jobs = [(m, "session", m) for m in cfg["session_models"]]
    session_names = set(cfg["session_models"])
    for m in cfg["user_models"]:
        jobs.append((m, "user", f"{m}-user" if m in session_names else m))
    jobs += [(m, "autoencoder", m) for m in cfg["autoencoders"]]
    if meta["entity"] != "user" or not meta["has_user_ids"]:
        # Without users only the autoencoders have a product (item similarity); NCF needs users.
        jobs = [j for j in jobs if j[1] != "user"]
    return jobs


def night_jobs(bundle: Path, models_dir: Path, device: str | None = None, only: list[str] | None = None) -> list[dict]:
    """One job per model of tonight's plan (``only``: these labels), in plan order: the keyword
    arguments of ``train_one`` plus the bundle's fingerprint."""
    meta = bundle_meta(bundle)
    cfg = meta["config"]
    jobs = []
    for model, family, label in plan(cfg, meta):
        if only and label not in only:
            continue
        source = meta.get("warm_start", {}).get(label)
        jobs.append({
            "bundle": str(bundle),
            "fingerprint": meta["fingerprint"],  # part of the cache key: new data, new key
            "model_name": model,
            "family": family,
            "label": label,
            "models_dir": str(models_dir),
            "params": cfg["models"].get(label, cfg["models"].get(model, {})),  # [night.models.NAME]
            "seed": cfg["seed"],
            "device": device or get_settings().device,  # CLICKREC_DEVICE when no argument; None: auto
            "refit_full": cfg["refit_full"],
            "top_n": cfg["top_n"],
            "similar_k": cfg["similar_k"],
            # a warm start from another checkpoint is another model (another key)
            "warm": {**source, "max_epochs": cfg["warm_max_epochs"]} if source else None,
        })
    return jobs


def outputs_exist(result: dict) -> bool:
    """Whether every file a training result names (candidates, checkpoint) is still there: a cached
    result whose files were removed since (a pruned or rebuilt bundle) must be trained again."""
    paths = list(result["outputs"].values()) + ([result["checkpoint_path"]] if result["checkpoint_path"] else [])
    return all(Path(p).exists() for p in paths)
