"""Train a session model (GRU4Rec, NARM) with the project's default hyperparameters for the data size.

``train_session_model`` is a plain function (tests, benchmarks, the protocol runner's callers);
``train_session_model_task`` is its thin Prefect wrapper for the nightly flow.
"""

from __future__ import annotations

from typing import Any

import torch

from recmodels.base import FitReport, SessionRecommender
from recmodels.data import Sessions
from recmodels.registry import create
from tasks.common.models import SESSION_NETWORKS
from tasks.train.size_defaults import session_defaults

SESSION_MODELS = SESSION_NETWORKS
# The size rules live in tasks.train.size_defaults (the nightly applies the same ones).
default_params = session_defaults


def train_session_model(
    name: str,
    train: Sessions,
    valid: Sessions | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[SessionRecommender, FitReport]:
    """Fit ``name`` on ``train`` (early stopping on ``valid`` when given): defaults for the size, ``params`` on top."""
    n_events = int(len(train.items) - train.n_sessions)
    cfg = {**default_params(name, n_events), **(params or {})}
    model = create(name, config=cfg, device=device, seed=seed)
    assert isinstance(model, SessionRecommender)
    report = model.fit(train, valid)
    return model, report


try:  # the Prefect wrapper; the plain function above works without Prefect installed
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    @task(name="train-session-model", cache_policy=NO_CACHE)
    def train_session_model_task(
        name: str,
        train: Sessions,
        valid: Sessions | None = None,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> tuple[SessionRecommender, FitReport]:
        return train_session_model(name, train, valid, params, seed, device)

except ImportError:  # pragma: no cover - prefect is a project dependency
    train_session_model_task = None  # type: ignore[assignment]
