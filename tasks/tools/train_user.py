"""Train a user model (NCF family, autoencoders) with the project's defaults for the data size.

``train_user_model`` is a plain function (tests, benchmarks, the nightly flow's callers);
``train_user_model_task`` is its thin Prefect wrapper.

Defaults: the model classes' config defaults are the settings tuned on P2 (ml-100k, early stopping
on the validation targets). Larger logs keep the architecture and change only what the size calls
for: bigger batches (fewer optimiser steps per epoch, better device use), the Mult-VAE annealing
horizon in steps, fewer epochs / less patience (nightly runtime), and early stopping on a fixed
random sample of the validation users (the full-ranking validation pass costs one scoring of every
sampled user per epoch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recmodels.base import FitReport, UserRecommender
from recmodels.data import Interactions, UserTargets
from recmodels.registry import create
from tasks.common.models import USER_NETWORKS
from tasks.train.size_defaults import VALID_SAMPLE_USERS, user_defaults

USER_MODELS = USER_NETWORKS


def default_params(name: str, train: Interactions) -> dict[str, Any]:
    """Default hyperparameters of ``name`` for ``train`` (on top of the model's config defaults): the size
    rules of ``tasks.train.size_defaults``, which the nightly applies too."""
    return user_defaults(name, int(train.matrix.nnz), int(train.matrix.shape[0]))


def sample_valid(valid: UserTargets | None, max_users: int, seed: int) -> UserTargets | None:
    """A fixed random subset of the validation targets (all of them when there are few)."""
    if valid is None or len(valid.users) <= max_users:
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(valid.users), max_users, replace=False))
    return UserTargets(valid.users[rows], valid.targets[rows], valid.history[rows], valid.exclude[rows])


def train_user_model(
    name: str,
    train: Interactions,
    valid: UserTargets | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[UserRecommender, FitReport]:
    """Fit ``name`` on ``train`` (early stopping on ``valid`` when given): size defaults, ``params`` on top."""
    cfg = {**default_params(name, train), **(params or {})}
    model = create(name, config=cfg, device=device, seed=seed)
    assert isinstance(model, UserRecommender)
    report = model.fit(train, sample_valid(valid, VALID_SAMPLE_USERS, seed))
    return model, report


try:  # the Prefect wrapper; the plain function above works without Prefect installed
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    @task(name="train-user-model", cache_policy=NO_CACHE)
    def train_user_model_task(
        name: str,
        train: Interactions,
        valid: UserTargets | None = None,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> tuple[UserRecommender, FitReport]:
        return train_user_model(name, train, valid, params, seed, device)

except ImportError:  # pragma: no cover - prefect is a project dependency
    train_user_model_task = None  # type: ignore[assignment]
