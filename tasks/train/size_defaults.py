"""Training defaults by data size: the one home of the rules the nightly, the benchmarks and the tools apply.

A model's own config defaults are the settings tuned on the small protocol data sets (rsc15-100k,
ml-100k). Larger logs keep the architecture and change only what the size calls for. The nightly
(``tasks.train.fit.train_one``), ``clickrec bench train`` and the tools' trainers
(``tasks.tools.train_session`` / ``train_user``) all start from :func:`size_defaults`, with the night's
``[night.models.NAME]`` values (or the caller's params) on top, so a benchmark measures what a night trains.

Pure Python (no torch): the sizes come in as numbers.
"""

from __future__ import annotations

import math
from typing import Any

from tasks.common.models import NCF_MODELS, SESSION_NETWORKS, USER_NETWORKS

SMALL_EVENTS = 1_000_000  # training events (clicks - sessions) up to which the "small" session settings apply
SMALL_INTERACTIONS = 1_000_000  # training interactions up to which the P2-tuned user settings apply
VALID_SAMPLE_USERS = 20_000  # validation users used for early stopping on large logs

# GRU4Rec, small logs: chosen by `clickrec tune --model gru4rec --protocol P1` (Optuna TPE over the
# official implementation's cross-entropy parameter space, github.com/hidasib/GRU4Rec_PyTorch_Official
# paramspaces/; 5 trials, on P1's train_tr -> train_valid split only): valid MRR@20 0.3618 against
# 0.3381 for the official rsc15 paramfile (layers 100, batch 32, lr 0.2, logq 1) used before. Test,
# seeds 0-2: HR@20 0.6984 / MRR@20 0.3771 (the paramfile: 0.680 / 0.360; V-SkNN 0.688 / 0.367).
# Larger logs keep them but train fewer epochs (nightly runtime).
GRU4REC_SMALL: dict[str, Any] = dict(
    loss="cross-entropy",
    layers=[96],
    batch_size=176,
    n_sample=2048,
    sample_alpha=0.2,
    logq=0.0,
    dropout_p_embed=0.5,
    dropout_p_hidden=0.35,
    lr=0.045,
    momentum=0.35,
    optimizer="adagrad",
    constrained_embedding=True,
    bpreg=0.0,
    epochs=10,
)
GRU4REC_LARGE: dict[str, Any] = {**GRU4REC_SMALL, "epochs": 3}

# NARM: the paper's sizes (embedding 50, hidden 100, dropout 0.25 / 0.5, Adam). Small logs: learning
# rate, batch size, per-epoch decay and epoch count tuned on P1's train_tr / train_valid split
# (valid MRR@20 plateaus from epoch 9: 0.341 at lr 5e-3, batch 128, decay 0.75; the paper's lr 1e-3,
# batch 512 reaches 0.315 after 24 epochs). Large logs: the paper's settings.
NARM_SMALL: dict[str, Any] = dict(
    embedding=50,
    hidden=100,
    dropout_embed=0.25,
    dropout_ct=0.5,
    lr=5e-3,
    batch_size=128,
    lr_decay=0.75,
    epochs=10,
)
NARM_LARGE: dict[str, Any] = {
    **NARM_SMALL,
    "lr": 1e-3,
    "batch_size": 512,
    "lr_decay": 1.0,
    "epochs": 5,
}


def session_defaults(name: str, n_train_events: int) -> dict[str, Any]:
    """Default hyperparameters of session network ``name`` for a log of ``n_train_events`` predictions."""
    small = n_train_events <= SMALL_EVENTS
    if name == "gru4rec":
        return dict(GRU4REC_SMALL if small else GRU4REC_LARGE)
    if name == "narm":
        return dict(NARM_SMALL if small else NARM_LARGE)
    raise ValueError(f"not a trained session model: {name!r}; one of {SESSION_NETWORKS}")


def user_defaults(name: str, nnz: int, n_users: int) -> dict[str, Any]:
    """Default hyperparameters of user network ``name`` for ``nnz`` training interactions of ``n_users``
    users (on top of the model's config defaults, which are the P2-tuned ones)."""
    if name not in USER_NETWORKS:
        raise ValueError(f"not a trained user model: {name!r}; one of {USER_NETWORKS}")
    if nnz <= SMALL_INTERACTIONS:
        return {}
    if name in NCF_MODELS:
        # ~5 x nnz samples an epoch: large batches, linearly scaled learning rate, short runs
        return {"batch_size": 16_384, "lr": 4e-3, "epochs": 20, "patience": 3}
    # autoencoders: one sample = one user (item for I-AutoRec)
    params: dict[str, Any] = {"batch_size": 512, "epochs": 50, "patience": 5}
    if name == "multvae":
        # same annealing horizon in epochs as the P2 setting has in steps at batch 128 on ml-100k
        # (20,000 steps ~ 2,700 epochs): beta stays near 0, the best-beta epoch is the early one
        params["total_anneal_steps"] = max(1_000, 2_700 * math.ceil(n_users / 512))
    return params


def size_defaults(name: str, data: Any) -> dict[str, Any]:
    """The size rules for registry model ``name`` trained on ``data`` (``recmodels.data.Sessions`` or
    ``Interactions``); ``{}`` for a model without size rules (the baselines)."""
    if name in SESSION_NETWORKS and hasattr(data, "n_sessions"):
        return session_defaults(name, int(len(data.items) - data.n_sessions))
    if name in USER_NETWORKS and hasattr(data, "matrix"):
        return user_defaults(name, int(data.matrix.nnz), int(data.matrix.shape[0]))
    return {}
