"""The one model interface every family and baseline implements.

The protocol runner (``recmodels.protocols``), the nightly training task and the publisher only
talk to these methods, so a new model plugs in by subclassing one class and registering a name in
``recmodels.registry``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.data import Interactions, Sessions, UserTargets


@dataclass
class FitReport:
    """What ``fit`` measured: stored with the checkpoint and in ``models.model_runs``."""

    epochs: int = 0
    best_epoch: int = 0
    train_seconds: float = 0.0
    train_events: int = 0  # events (session models) or samples (user models) processed
    valid_metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch loss / valid metric

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommender(ABC):
    """Common part: a name, a config dataclass, a device, checkpoints."""

    name: ClassVar[str]

    def __init__(self, config: Any = None, device: str | torch.device | None = None, seed: int = 0) -> None:
        from recmodels.device import pick_device

        self.config = config
        self.device = pick_device(device)
        self.seed = seed
        self.n_items = 0
        self._warm_dir: Path | None = None

    # --- warm start ----------------------------------------------------------------------------
    def warm_start_from(self, directory: str | Path) -> None:
        """Start the next ``fit`` from a checkpoint's weights (grown to the new vocabulary) instead of a
        fresh initialisation. The checkpoint is read inside ``fit``; an untrustworthy one raises
        ``CheckpointError`` there, and the caller decides whether to train from scratch."""
        self._warm_dir = Path(directory)

    def _warm_model(self, **sizes: int) -> Recommender | None:
        """The warm-start checkpoint loaded and grown to ``sizes`` (``n_items`` / ``n_users``), or None.

        Only the weights are taken from it: tonight's config (epochs, learning rate) still drives the
        fit, and a checkpoint of another architecture fails when its tensors are copied in."""
        if self._warm_dir is None:
            return None
        return type(self).load(self._warm_dir, device=self.device, **sizes)  # type: ignore[attr-defined]

    def _copy_warm(self, target: torch.nn.Module | Recommender, state: dict[str, torch.Tensor]) -> None:
        from recmodels.checkpoint import CheckpointError

        try:
            target.load_state_dict(state)
        except (KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{self._warm_dir}: cannot warm-start {self.name} from it ({first})") from None

    # --- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (loadable with ``torch.load(weights_only=True)``). Baselines override."""
        module = getattr(self, "module", None)
        return {} if module is None else module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        module = getattr(self, "module", None)
        if module is not None:
            module.load_state_dict(state)

    def config_dict(self) -> dict[str, Any]:
        cfg = self.config
        return asdict(cfg) if cfg is not None and hasattr(cfg, "__dataclass_fields__") else dict(cfg or {})

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        from recmodels.checkpoint import save_checkpoint

        meta = {"model": self.name, "config": self.config_dict(), "n_items": self.n_items, "seed": self.seed}
        meta.update(extra_meta or {})
        return save_checkpoint(Path(directory), self.state_dict(), meta)


class SessionRecommender(Recommender):
    """Next-item models over sessions (GRU4Rec, NARM, S-POP, V-SkNN, item-kNN, pop)."""

    @abstractmethod
    def fit(self, train: Sessions, valid: Sessions | None = None) -> FitReport: ...

    @abstractmethod
    def score_next(self, sessions: Sessions) -> torch.Tensor:
        """Scores for the next item after *every* event: float tensor ``[len(sessions.items), n_items]``.

        Row ``offsets[s] + t`` holds the scores given the prefix ``items[offsets[s] : offsets[s]+t+1]``.
        Callers pass small batches of sessions (the runner chunks), so the result fits in memory.
        Items unknown to the model (index >= its n_items) must be handled (e.g. scored -inf / zero
        embedding), never an index error.
        """

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        """Scores after each session's last event ``[n_sessions, n_items]`` (its state at the end).

        Default: the last rows of ``score_next``; models with a cheaper path override it.
        """
        return self.score_next(sessions)[torch.as_tensor(sessions.offsets[1:] - 1)]


class UserRecommender(Recommender):
    """Top-N models over users (NCF, autoencoders, EASE, pop)."""

    @abstractmethod
    def fit(self, train: Interactions, valid: UserTargets | None = None) -> FitReport: ...

    @abstractmethod
    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Scores ``[len(users), n_items]``; ``history`` rows (aligned with ``users``) are the model's input.

        Models with user embeddings read ``users``; autoencoders read ``history``. Seen-item exclusion
        is the caller's job (the runner and the publisher mask it), so return raw scores.
        """

    def item_vectors(self) -> torch.Tensor | None:
        """Latent item vectors ``[n_items, d]`` for cosine similarity, or None when the model has none."""
        return None


def load_meta(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "meta.json").read_text())
