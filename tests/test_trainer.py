"""The one Trainer: patience's one meaning, best-state restore, eval_every, progress and checkpoint
hooks, refit; and the nightly's per-epoch progress lines (plain logger and Prefect's run logger)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch
from session_fixtures import planted_log

from recmodels.base import Step, TrainedModel
from recmodels.gru4rec import GRU4Rec
from recmodels.trainer import EpochProgress, Trainer, fit_with_refit


@dataclasses.dataclass
class ScriptCfg:
    epochs: int = 6
    patience: int | None = None
    eval_every: int = 1


class Scripted(TrainedModel):
    """A model whose validation figure after epoch k is ``script[k - 1]`` and whose 'weights' are the
    number of epochs trained: what the Trainer restores is visible."""

    name = "scripted"

    def __init__(self, script: list[float], config: ScriptCfg | None = None) -> None:
        super().__init__(config or ScriptCfg(), device="cpu")
        self.script = script
        self.trained = 0
        self.warm: Path | None = None
        self.validated_at: list[int] = []

    def begin_fit(self, train, warm_from):  # noqa: ANN001
        self.trained, self.warm = 0, warm_from

    def train_batches(self):
        return [1.0, 3.0]  # two batches: the epoch loss is their mean

    def train_step(self, batch):  # noqa: ANN001
        return Step(torch.tensor(batch), 1, 5)

    def end_epoch(self):
        self.trained += 1
        return {}

    def validate(self, valid):  # noqa: ANN001
        self.validated_at.append(self.trained)
        return {"MRR@20": self.script[self.trained - 1], "HR@20": 0.0}

    def snapshot(self):
        return {"trained": torch.tensor(self.trained)}

    def restore(self, state):  # noqa: ANN001
        self.trained = int(state["trained"])

    def fit(self, train, valid=None, **kw):  # noqa: ANN001
        return super().fit(train, valid, **kw)

    def score_next(self, sessions):  # noqa: ANN001  (the interface asks for it; these tests never score)
        return torch.zeros(1, 1)


def test_patience_counts_evaluations_without_a_new_best_and_the_best_state_is_restored() -> None:
    model = Scripted([0.1, 0.3, 0.2, 0.25, 0.5, 0.6])
    rep = Trainer(epochs=6, patience=2).fit(model, train=None, valid="v")
    assert rep.epochs == 4 and rep.best_epoch == 2  # epochs 3 and 4 did not beat 0.3: stop after 4
    assert model.trained == 2  # epoch 2's state restored
    assert rep.valid_metrics["MRR@20"] == 0.3
    assert [r["loss"] for r in rep.history] == [2.0] * 4 and rep.train_events == 4 * 10
    assert rep.history[1]["valid_MRR@20"] == 0.3 and "seconds" in rep.history[0]


def test_patience_none_never_stops_and_zero_is_refused() -> None:
    model = Scripted([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    rep = Trainer(epochs=6, patience=None).fit(model, None, "v")
    assert rep.epochs == 6 and rep.best_epoch == 1 and model.trained == 1
    with pytest.raises(ValueError, match="patience must be at least 1"):
        Trainer(epochs=6, patience=0)


def test_without_validation_every_epoch_runs_and_the_last_state_stays() -> None:
    model = Scripted([0.5] * 6)
    rep = Trainer(epochs=6, patience=1).fit(model, None, None)
    assert rep.epochs == rep.best_epoch == 6 and model.trained == 6 and model.validated_at == []


def test_eval_every_evaluates_on_schedule_and_after_the_last_epoch() -> None:
    model = Scripted([0.1, 0.2, 0.3, 0.4, 0.9], ScriptCfg(epochs=5, patience=None, eval_every=2))
    rep = model.fit(None, "v")  # the config's settings: Trainer.from_config
    assert model.validated_at == [2, 4, 5]  # every 2nd epoch, and the unevaluated last one
    assert rep.best_epoch == 5 and model.trained == 5


def test_progress_gets_one_frozen_record_per_epoch_and_checkpoint_hook_its_schedule(tmp_path) -> None:
    seen: list[EpochProgress] = []
    saved: list[int] = []
    model = Scripted([0.1, 0.2, 0.3, 0.4])
    trainer = Trainer(epochs=4, patience=None, eval_every=2, progress=seen.append,
                      checkpoint=lambda m, p: saved.append(m.trained), checkpoint_every=2)
    trainer.fit(model, None, "v", warm_from=tmp_path)
    assert model.warm == tmp_path  # warm start reaches the model's set-up
    assert [(p.epoch, p.epochs, p.loss) for p in seen] == [(1, 4, 2.0), (2, 4, 2.0), (3, 4, 2.0), (4, 4, 2.0)]
    assert [p.metric for p in seen] == [None, "MRR@20", None, "MRR@20"] and seen[1].value == 0.2
    assert seen[-1].seconds_left == 0.0 and all(p.seconds >= 0 for p in seen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].epoch = 9  # type: ignore[misc]
    assert saved == [2, 4]
    line = dataclasses.replace(seen[1], seconds=12.0, seconds_left=84.0).line()
    assert line == "scripted epoch 2/4 loss 2.0000 valid MRR@20 0.2000 (12 s, ~84 s left)"


def test_refit_trains_a_fresh_model_for_the_best_epoch_count_without_early_stopping() -> None:
    made: list[Scripted] = []

    def make(params: dict) -> Scripted:
        made.append(Scripted([0.1, 0.4, 0.2, 0.2, 0.2, 0.2], ScriptCfg(**params)))
        return made[-1]

    final, rep = fit_with_refit(make, {"epochs": 6, "patience": 2}, "train", "valid", "full")
    assert len(made) == 2 and final is made[1]
    assert final.config.epochs == 2 and final.config.patience is None and final.trained == 2
    assert final.validated_at == [] and rep.best_epoch == 2 and rep.valid_metrics["MRR@20"] == 0.4
    _, once = fit_with_refit(make, {"epochs": 6, "patience": 2}, "train", "valid", "full", refit=False)
    assert len(made) == 3 and once.epochs == 4


def test_a_non_finite_loss_stops_with_one_line() -> None:
    model = Scripted([0.1] * 6)
    model.train_batches = lambda: [float("nan")]  # type: ignore[method-assign]
    with pytest.raises(FloatingPointError, match="scripted: loss became nan in epoch 1"):
        Trainer(epochs=3).fit(model, None, None)


# --- the nightly's progress lines ----------------------------------------------------------------
TINY = {"epochs": 2, "layers": [8], "batch_size": 8, "n_sample": 16}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_epoch_lines_reach_the_clickrec_logger_outside_a_run() -> None:
    from tasks.train.fit import epoch_logger

    torch.set_num_threads(1)
    train, valid = planted_log(60, 20, seed=1), planted_log(20, 20, seed=2)
    logger, handler = logging.getLogger("clickrec"), _Lines()
    level = logger.level
    logger.addHandler(handler)  # on the logger itself: the CLI's logging set-up may stop propagation
    logger.setLevel(logging.INFO)
    try:
        GRU4Rec(TINY, device="cpu").fit(train, valid, progress=epoch_logger())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = handler.lines
    assert len(lines) == 2
    assert lines[0].startswith("gru4rec epoch 1/2 loss ") and " valid MRR@20 " in lines[0] and "s left)" in lines[0]


def test_epoch_lines_go_through_prefects_run_logger_inside_a_flow(prefect_harness, monkeypatch) -> None:
    from prefect import flow
    from prefect.logging.loggers import PrefectLogAdapter

    from tasks.train.fit import epoch_logger

    lines: list[tuple[str, str]] = []
    real = PrefectLogAdapter.info

    def record(self, msg, *args, **kwargs):  # noqa: ANN001
        lines.append((self.logger.name, msg))
        return real(self, msg, *args, **kwargs)

    monkeypatch.setattr(PrefectLogAdapter, "info", record)

    @flow(name="tiny-training")
    def tiny() -> int:
        torch.set_num_threads(1)
        rep = GRU4Rec(TINY, device="cpu").fit(planted_log(60, 20, seed=1), None, progress=epoch_logger())
        return rep.epochs

    assert tiny() == 2
    epoch_lines = [(name, msg) for name, msg in lines if " epoch " in msg]
    assert [msg.split(" loss ")[0] for _, msg in epoch_lines] == ["gru4rec epoch 1/2", "gru4rec epoch 2/2"]
    assert all(name.startswith("prefect.flow_runs") for name, _ in epoch_lines)
