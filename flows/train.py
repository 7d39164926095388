"""The training flow: every model of a night, from its bundle. Deployed on the ``gpu`` work pool.

It reads only the bundle folder and writes checkpoints and candidate files, so a GPU worker can run it
(device chosen automatically: CUDA with bf16 autocast when present). Each model is a task whose
result is cached by (bundle fingerprint, model, params, seed): a retried night does not retrain
models that already finished.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import INPUTS

from tasks.features.bundle import bundle_meta
from tasks.train.fit import train_one


@task(name="train-model", retries=1, retry_delay_seconds=5, cache_policy=INPUTS, persist_result=True,
      cache_expiration=timedelta(days=7))
def train_model_task(
    bundle: str, fingerprint: str, model: str, family: str, models_dir: str, params: dict, seed: int,
    device: str | None, refit_full: bool, top_n: int, similar_k: int, label: str, warm: dict | None = None,
) -> dict:
    """``fingerprint`` is part of the inputs so the cache key changes whenever the night's data does
    (``warm`` too: a warm start from another checkpoint is another model)."""
    return train_one(Path(bundle), model, family, Path(models_dir), params, seed, device, refit_full, top_n,
                     similar_k, label, warm)


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


def _outputs_exist(result: dict) -> bool:
    paths = list(result["outputs"].values()) + ([result["checkpoint_path"]] if result["checkpoint_path"] else [])
    return all(Path(p).exists() for p in paths)


@flow(name="train-night", log_prints=False)
def train_night(bundle: str, models_dir: str, device: str | None = None, only: list[str] | None = None) -> list[dict]:
    """Train tonight's models one after another (they share the machine's cores / the GPU)."""
    meta = bundle_meta(Path(bundle))
    cfg = meta["config"]
    results = []
    for model, family, label in plan(cfg, meta):
        if only and label not in only:
            continue
        params = cfg["model_params"].get(label, cfg["model_params"].get(model, {}))
        source = meta.get("warm_start", {}).get(label)
        warm = {**source, "max_epochs": cfg["warm_max_epochs"]} if source else None
        args = (bundle, meta["fingerprint"], model, family, models_dir, params, cfg["seed"], device,
                cfg["refit_full"], cfg["top_n"], cfg["similar_k"], label, warm)
        result = train_model_task(*args)
        if not _outputs_exist(result):  # a cached result whose files were removed since: train again
            result = train_model_task.with_options(refresh_cache=True)(*args)
        results.append(result)
    (Path(bundle) / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return results
