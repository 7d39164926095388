"""The train stage's Prefect tasks: one model of the night per task, its result cached.

A model's result is cached by its job (bundle fingerprint, model, params, seed, warm start): a
retried night does not retrain models that already finished; a cached result whose files were
removed since is trained again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE

from tasks.common.models import TRAINING_CACHE_DAYS
from tasks.train.fit import train_one
from tasks.train.plan import outputs_exist


@task(name="train-model-cached", retries=1, retry_delay_seconds=5, cache_policy=INPUTS, persist_result=True,
      cache_expiration=timedelta(days=TRAINING_CACHE_DAYS))
def _train_cached(job: dict) -> dict:
    args = {k: v for k, v in job.items() if k != "fingerprint"}
    return train_one(**{**args, "bundle": Path(job["bundle"]), "models_dir": Path(job["models_dir"])})


@task(name="train-model", cache_policy=NO_CACHE, task_run_name="train-{job[label]}")
def train_model(job: dict) -> dict:
    """Train one model of the night (``tasks.train.plan.night_jobs``), or reuse its cached result."""
    result = _train_cached(job)
    if not outputs_exist(result):  # a cached result whose files were removed since: train again
        result = _train_cached.with_options(refresh_cache=True)(job)
    return result


@task(name="write-train-results", cache_policy=NO_CACHE)
def write_results(bundle: str, results: list[dict]) -> list[dict]:
    """``<bundle>/results.json``: the night's training results in plan order."""
    (Path(bundle) / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return results
