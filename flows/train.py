"""The training flow: every model of a night, from its bundle. Deployed on the ``gpu`` work pool.

It reads only the bundle folder and writes checkpoints and candidate files, so a GPU worker can run it
(device chosen automatically: CUDA with bf16 autocast when present). The plan (which models, which
settings) is ``tasks.train.plan``; each model is one cached task (``tasks.train.run``). The models
train one after another (one worker): they share the machine's cores / the GPU.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.train.plan import night_jobs
from tasks.train.run import train_model, write_results


@flow(name="train-night", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))
def train_night(bundle: str, models_dir: str, device: str | None = None, only: list[str] | None = None) -> list[dict]:
    """Train tonight's models (``only``: these labels) and write ``<bundle>/results.json``."""
    jobs = night_jobs(Path(bundle), Path(models_dir), device, only)
    results = train_model.map(jobs).result()
    return write_results(bundle, results)
