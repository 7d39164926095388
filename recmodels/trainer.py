"""The one training loop of every trained family (GRU4Rec, NARM, NCF, the autoencoders, DDP).

``Trainer.fit(model, train, valid)`` runs epochs of ``model.train_step`` over ``model.train_batches()``,
evaluates on ``valid`` every ``eval_every`` epochs, keeps the best state (``model.snapshot``) and
restores it at the end, and stops early after ``patience`` consecutive evaluations without a new best
(``patience=None``: never). ``warm_from`` starts from a checkpoint (the model grows it to tonight's
sizes and keeps the optimiser state where the checkpoint has it). After every epoch it hands a small
frozen ``EpochProgress`` to the ``progress`` callback and, every ``checkpoint_every`` epochs, the model
to the ``checkpoint`` hook. ``fit_with_refit`` is the refit after early stopping: a fresh model
trained on train + valid for the best epoch count, early stopping off.

Pure torch; the models answer the Trainer through ``recmodels.base.TrainedModel``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from recmodels.base import FitReport, TrainedModel


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch, for progress lines: ``metric`` / ``value`` are None when it was not evaluated.

    ``seconds`` is this epoch's time (training and validation); ``seconds_left`` the mean epoch time
    times the epochs still allowed (an upper bound: early stopping may end sooner; 0 when stopping)."""

    model: str
    epoch: int
    epochs: int
    loss: float
    metric: str | None
    value: float | None
    seconds: float
    seconds_left: float

    def line(self) -> str:
        """``gru4rec epoch 3/10 loss 4.2104 valid MRR@20 0.3120 (12 s, ~84 s left)``."""
        valid = f" valid {self.metric} {self.value:.4f}" if self.metric is not None and self.value is not None else ""
        return (
            f"{self.model} epoch {self.epoch}/{self.epochs} loss {self.loss:.4f}{valid} "
            f"({self.seconds:.0f} s, ~{self.seconds_left:.0f} s left)"
        )


Progress = Callable[[EpochProgress], None]
Checkpoint = Callable[[TrainedModel, EpochProgress], None]


class _Best:
    """Early-stopping bookkeeping: the best value so far, its epoch and state, evaluations since."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.value = -math.inf
        self.state: dict[str, torch.Tensor] | None = None
        self.since = 0

    def update(self, model: TrainedModel, value: float) -> bool:
        """Record one evaluation; True when it is a new best."""
        if value > self.value:
            self.value, self.since, self.state = value, 0, model.snapshot()
            return True
        self.since += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.since >= self.patience


class Trainer:
    """Epochs, early stopping on validation, warm start, progress and checkpoint hooks (see module)."""

    def __init__(
        self,
        epochs: int,
        patience: int | None = None,
        eval_every: int = 1,
        eval_at_start: bool = False,
        progress: Progress | None = None,
        checkpoint: Checkpoint | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, not {epochs}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 (evaluations without a new best), or None for no early stopping; not {patience}")
        if eval_every < 1 or checkpoint_every < 1:
            raise ValueError("eval_every and checkpoint_every must be at least 1")
        self.epochs, self.patience, self.eval_every = int(epochs), patience, int(eval_every)
        self.eval_at_start = eval_at_start  # evaluate the starting state too (epoch 0: a pre-trained start)
        self.progress, self.checkpoint, self.checkpoint_every = progress, checkpoint, checkpoint_every

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> Trainer:
        """The settings a model's config carries: ``epochs``, ``patience``, ``eval_every`` (default 1)."""
        return cls(config.epochs, config.patience, getattr(config, "eval_every", 1), **kwargs)

    def fit(self, model: TrainedModel, train: Any, valid: Any = None, warm_from: str | Path | None = None) -> FitReport:
        """Train ``model`` on ``train``; with ``valid``, keep (and restore) the best evaluated state."""
        t0 = time.perf_counter()
        model.begin_fit(train, None if warm_from is None else Path(warm_from))
        report = FitReport()
        best = _Best(self.patience)
        if valid is not None and self.eval_at_start:
            report.history.append(self._evaluate(model, valid, best, report, 0, {"epoch": 0}))
        for epoch in range(1, self.epochs + 1):
            te = time.perf_counter()
            row = self._train_epoch(model, epoch, report)
            evaluated = valid is not None and epoch % self.eval_every == 0
            if evaluated:
                self._evaluate(model, valid, best, report, epoch, row)
            row["seconds"] = time.perf_counter() - te
            report.history.append(row)
            spent = sum(r["seconds"] for r in report.history if r["epoch"] > 0)
            self._tell(model, row, evaluated, stopping=best.stop, spent=spent)
            if best.stop:
                break
        if valid is not None and report.epochs % self.eval_every != 0:
            self._evaluate(model, valid, best, report, report.epochs, report.history[-1])
        if best.state is not None:
            model.restore(best.state)
        else:
            report.best_epoch = report.epochs
        model.end_fit(train)
        report.train_seconds = time.perf_counter() - t0
        return report

    def _train_epoch(self, model: TrainedModel, epoch: int, report: FitReport) -> dict[str, float]:
        loss_sum = None
        count = events = 0
        for batch in model.train_batches():
            step = model.train_step(batch)
            loss_sum = step.loss_sum if loss_sum is None else loss_sum + step.loss_sum
            count += step.count
            events += step.events
        extras = model.end_epoch()
        loss = 0.0 if loss_sum is None else float(loss_sum) / max(count, 1)  # one host sync per epoch
        if not math.isfinite(loss):
            raise FloatingPointError(f"{model.name}: loss became {loss} in epoch {epoch}")
        report.epochs = epoch
        report.train_events += events
        return {"epoch": float(epoch), "loss": loss, **extras}

    @staticmethod
    def _evaluate(
        model: TrainedModel, valid: Any, best: _Best, report: FitReport, epoch: int, row: dict[str, float]
    ) -> dict[str, float]:
        figures = model.validate(valid)
        row.update({f"valid_{k}": v for k, v in figures.items() if k != "n_predictions"})
        if best.update(model, figures[model.valid_metric]):
            report.best_epoch, report.valid_metrics = epoch, dict(figures)
        return row

    def _tell(self, model: TrainedModel, row: dict[str, float], evaluated: bool, stopping: bool, spent: float) -> None:
        if self.progress is None and self.checkpoint is None:
            return
        epoch = int(row["epoch"])
        metric = model.valid_metric if evaluated else None
        left = 0.0 if stopping else spent / epoch * (self.epochs - epoch)
        info = EpochProgress(
            model=model.name,
            epoch=epoch,
            epochs=self.epochs,
            loss=row["loss"],
            metric=metric,
            value=row.get(f"valid_{metric}") if metric else None,
            seconds=row["seconds"],
            seconds_left=left,
        )
        if self.progress is not None:
            self.progress(info)
        if self.checkpoint is not None and epoch % self.checkpoint_every == 0:
            self.checkpoint(model, info)


def fit_with_refit(
    make: Callable[[dict[str, Any]], TrainedModel],
    params: dict[str, Any],
    train: Any,
    valid: Any,
    full: Any,
    refit: bool = True,
    progress: Progress | None = None,
    warm_from: str | Path | None = None,
) -> tuple[TrainedModel, FitReport]:
    """Early stopping on ``valid``, then (``refit``) a fresh ``make(refit params)`` trained on ``full``
    (train + valid) for the best epoch count without early stopping. The returned report is the
    refit's, with the validation figures and best epoch that chose its epoch count."""
    model = make(params)
    report = model.fit(train, valid, progress=progress, warm_from=warm_from)
    again = model.refit_params(params, report.best_epoch) if refit else None
    if again is None:
        return model, report
    final = make(again)
    final_report = final.fit(full, None, progress=progress, warm_from=warm_from)
    final_report.valid_metrics = report.valid_metrics
    final_report.best_epoch = report.best_epoch
    return final, final_report
