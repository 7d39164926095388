"""The one model interface every family and baseline implements.

``Recommender`` is what the protocol runner, the nightly training task and the publisher talk to:
scores over all items (``SessionRecommender.score_next`` / ``UserRecommender.score_users``),
``item_vectors()`` where a model has them, and ``save`` / ``load`` with validation
(``recmodels.checkpoint``). A new model plugs in by subclassing one class and registering a name in
``recmodels.registry``.

``TrainedModel`` is the part shared by every family trained by gradient steps (GRU4Rec, NARM, NCF,
the autoencoders): it answers the few questions ``recmodels.trainer.Trainer`` asks (set up, one
epoch's batches, one training step per batch, validation, best-state snapshot), while the Trainer
owns epochs, early stopping, refit, warm start, progress and checkpoints. Baselines fit in one pass
and implement ``fit`` themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.data import Interactions, Sessions, UserTargets

if TYPE_CHECKING:
    from recmodels.trainer import EpochProgress


@dataclass
class FitReport:
    """What ``fit`` measured: stored with the checkpoint and in ``models.model_runs``."""

    epochs: int = 0
    best_epoch: int = 0
    train_seconds: float = 0.0
    train_events: int = 0  # events (session models) or samples (user models) processed
    valid_metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, seconds, valid_*

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

    @abstractmethod
    def fit(self, train: Any, valid: Any = None) -> FitReport: ...

    def item_vectors(self) -> torch.Tensor | None:
        """Latent item vectors ``[n_items, d]`` for cosine similarity, or None when the model has none."""
        return None

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


class Step(NamedTuple):
    """What one training step hands the Trainer: the batch's summed loss (a detached 0-d tensor, kept
    on the device so no step waits for the host), the count it is averaged over, and the events
    (predictions / samples) it processed."""

    loss_sum: torch.Tensor
    count: int
    events: int


class TrainedModel(Recommender):
    """A model trained by gradient steps: the questions ``recmodels.trainer.Trainer`` asks.

    The config dataclass carries the training settings under one spelling: ``epochs``, ``lr``,
    ``batch_size``, ``patience`` (consecutive evaluations without a new best after which training
    stops; None: no early stopping) and optionally ``eval_every`` (epochs between evaluations).
    """

    valid_metric: ClassVar[str] = "MRR@20"  # what early stopping maximises (user models: their config's)

    # --- the Trainer's hooks --------------------------------------------------------------------
    @abstractmethod
    def begin_fit(self, train: Any, warm_from: Path | None) -> None:
        """Build fresh weights for ``train`` (or the ``warm_from`` checkpoint's, grown to its sizes, with
        the optimiser state where the checkpoint has it) and the optimiser; seeds are set here."""

    @abstractmethod
    def train_batches(self) -> Iterable[Any]:
        """This epoch's batches (drawn afresh each epoch); puts the model in training mode."""

    @abstractmethod
    def train_step(self, batch: Any) -> Step:
        """Forward, loss, backward and update on one batch."""

    @abstractmethod
    def validate(self, valid: Any) -> dict[str, float]:
        """Full-ranking figures on the validation split; must contain ``valid_metric``."""

    def end_epoch(self) -> dict[str, float]:
        """After an epoch's steps (learning-rate schedules); extra figures for the epoch's history row."""
        return {}

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the state that early stopping may restore (the best epoch's)."""
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}  # type: ignore[attr-defined]

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)  # type: ignore[attr-defined]

    def end_fit(self, train: Any) -> None:
        """After the best state is restored: evaluation mode, caches, set-up released."""

    # --- entry points -------------------------------------------------------------------------
    def fit(
        self,
        train: Any,
        valid: Any = None,
        *,
        progress: Callable[[EpochProgress], None] | None = None,
        warm_from: str | Path | None = None,
    ) -> FitReport:
        """Train with the config's settings (``recmodels.trainer.Trainer``); early stopping on ``valid``."""
        from recmodels.trainer import Trainer

        return Trainer.from_config(self.config, progress=progress).fit(self, train, valid, warm_from)

    def refit_params(self, params: dict[str, Any], best_epoch: int) -> dict[str, Any] | None:
        """``params`` for the refit on train + valid: the best epoch count, no early stopping; None when
        no epoch was ever validated. Models with phases (NeuMF's pre-training) override it."""
        if best_epoch <= 0:
            return None
        return {**params, "epochs": int(best_epoch), "patience": None}

    # --- warm start helpers -------------------------------------------------------------------
    def _load_warm(self, directory: Path, **sizes: int) -> Recommender:
        """The warm-start checkpoint loaded and grown to ``sizes`` (``n_items`` / ``n_users``).

        Only the weights (and optimiser state) are taken from it: tonight's config still drives the
        fit. An untrustworthy checkpoint raises ``CheckpointError``; the caller decides whether to
        train from scratch."""
        return type(self).load(directory, device=self.device, **sizes)  # type: ignore[attr-defined]

    def _copy_warm(self, target: torch.nn.Module | Recommender, state: dict[str, torch.Tensor], where: Path) -> None:
        from recmodels.checkpoint import CheckpointError

        try:
            target.load_state_dict(state)
        except (KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{where}: cannot warm-start {self.name} from it ({first})") from None
