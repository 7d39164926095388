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

SESSION_MODELS = ("gru4rec", "narm")
SMALL_EVENTS = 1_000_000  # training events (clicks - sessions) up to which the "small" settings apply

# GRU4Rec, small logs: the official implementation's published RSC15 cross-entropy settings
# (github.com/hidasib/GRU4Rec_PyTorch_Official, paramfiles/rsc15_xe_shared_best.py); they reach
# HR@20 0.68 / MRR@20 0.357 on P1. Larger logs keep them but train fewer epochs (nightly runtime;
# the official code uses the same settings on the full 31M-event RSC15).
GRU4REC_SMALL: dict[str, Any] = dict(
    loss="cross-entropy",
    layers=[100],
    batch_size=32,
    n_sample=2048,
    sample_alpha=0.5,
    logq=1.0,
    dropout_p_embed=0.0,
    dropout_p_hidden=0.4,
    learning_rate=0.2,
    momentum=0.2,
    optimizer="adagrad",
    constrained_embedding=True,
    bpreg=0.0,
    n_epochs=10,
)
GRU4REC_LARGE: dict[str, Any] = {**GRU4REC_SMALL, "n_epochs": 3}

# NARM: the paper's sizes (embedding 50, hidden 100, dropout 0.25 / 0.5, Adam). Small logs: learning
# rate, batch size, per-epoch decay and epoch count tuned on P1's train_tr / train_valid split
# (valid MRR@20 plateaus from epoch 9: 0.341 at lr 5e-3, batch 128, decay 0.75; the paper's lr 1e-3,
# batch 512 reaches 0.315 after 24 epochs). Large logs: the paper's settings.
NARM_SMALL: dict[str, Any] = dict(
    embedding=50,
    hidden=100,
    dropout_embed=0.25,
    dropout_ct=0.5,
    learning_rate=5e-3,
    batch_size=128,
    lr_decay=0.75,
    n_epochs=10,
)
NARM_LARGE: dict[str, Any] = {
    **NARM_SMALL,
    "learning_rate": 1e-3,
    "batch_size": 512,
    "lr_decay": 1.0,
    "n_epochs": 5,
}


def default_params(name: str, n_train_events: int) -> dict[str, Any]:
    """Default hyperparameters of session model ``name`` for a log of ``n_train_events`` predictions."""
    small = n_train_events <= SMALL_EVENTS
    if name == "gru4rec":
        return dict(GRU4REC_SMALL if small else GRU4REC_LARGE)
    if name == "narm":
        return dict(NARM_SMALL if small else NARM_LARGE)
    raise ValueError(f"not a trained session model: {name!r}; one of {SESSION_MODELS}")


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
