"""Epoch budgets of trainable models: which config key holds it, and the refit after early stopping.

A model chosen by early stopping on validation targets is refit on everything before the test with
the best epoch count and no early stopping; the nightly run and ``clickrec evaluate --refit`` do it
the same way, through these two functions.
"""

from __future__ import annotations

from typing import Any

EPOCH_KEYS = ("n_epochs", "epochs")


def trainable(model: Any) -> bool:
    """A torch model with an epoch budget (baselines have neither)."""
    return hasattr(model, "module") and any(k in model.config_dict() for k in EPOCH_KEYS)


def refit_params(params: dict, model: Any, best_epoch: int) -> dict | None:
    """``params`` with the epoch budget set to ``best_epoch`` and patience off; None if not applicable.

    A model with phases (NeuMF with pre-training) says itself which budget the best epoch belongs
    to, through its ``refit_config`` hook."""
    hook = getattr(model, "refit_config", None)
    if hook is not None:
        refit = hook(params, best_epoch)
        if refit is not None:
            return refit
    cfg = model.config_dict()
    for key in EPOCH_KEYS:
        if key in cfg and best_epoch > 0:
            return {**params, key: best_epoch} | ({"patience": 0} if "patience" in cfg else {})
    return None
