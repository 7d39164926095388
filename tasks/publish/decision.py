"""Every publish decision, in one place: the gate, the autoencoder selection and the status vocabulary.

Pure functions over trained results (the dicts ``tasks.train.fit.train_one`` returns) and numbers; the
warehouse reads and writes around them live in ``tasks.publish.record``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from tasks.common.models import (
    AUTOENCODER_VALID_FALLBACK,
    AUTOENCODER_VALID_METRIC,
    GATE_FIGURE,
    MIN_VALID_PREDICTIONS,
    Family,
    Figure,
)


class Status(enum.StrEnum):
    """``models.model_runs.status`` and the ``decision`` of a night's result: one spelling for both."""

    TRAINED = "trained"  # recorded, not yet decided (a night that stopped before its gate)
    PUBLISHED = "published"  # passed the gate: its rows are in the published tables
    REJECTED = "rejected"  # failed the gate: yesterday's champion stays published
    NOT_SELECTED = "not-selected"  # an autoencoder that validated worse than the other one


@dataclass(frozen=True)
class GateDecision:
    model: str
    version: str
    publish: bool
    reason: str
    challenger: float | None
    champion: float | None
    champion_version: str | None


@dataclass(frozen=True)
class Verdict:
    """What happens to one trained version tonight, and why."""

    model: str
    version: str
    status: Status
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"model": self.model, "version": self.version, "decision": self.status.value, "reason": self.reason}


def decide(
    model: str,
    version: str,
    challenger: float | None,
    champion: float | None,
    champion_version: str | None,
    tolerance: float,
    what: str,
) -> GateDecision:
    """Relative tolerance: pass when ``challenger >= champion * (1 - tolerance)``."""
    if challenger is None:
        return GateDecision(model, version, False, f"no {what} figure for the challenger (nothing to test on?)",
                            None, champion, champion_version)
    if champion is None:
        reason = "first version: no published champion" if champion_version is None else (
            f"champion {champion_version} has no {what} figure")
        return GateDecision(model, version, True, reason, challenger, None, champion_version)
    bar = champion * (1.0 - tolerance)
    if challenger >= bar:
        return GateDecision(model, version, True, f"{what} {challenger:.4f} >= {bar:.4f} "
                            f"(champion {champion_version} {champion:.4f}, tolerance {tolerance:.0%})",
                            challenger, champion, champion_version)
    return GateDecision(model, version, False, f"{what} {challenger:.4f} < {bar:.4f} "
                        f"(champion {champion_version} {champion:.4f}, tolerance {tolerance:.0%}): "
                        f"keeping {champion_version}", challenger, champion, champion_version)


def gate_figure(result: dict[str, Any]) -> Figure:
    """The figure ``result``'s family is judged by."""
    return GATE_FIGURE[Family(result["family"])]


def figure(result: dict[str, Any], fig: Figure) -> float | None:
    """``fig``'s value among ``result["metrics"]`` (None when the night could not measure it)."""
    for r in result["metrics"]:
        if r["protocol"] == fig.protocol and r["metric"] == fig.metric and r["k"] == fig.k:
            return float(r["value"])
    return None


def gate_result(result: dict[str, Any], champion: float | None, champion_version: str | None, tolerance: float,
                run_date: Any) -> GateDecision:
    """The gate for one trained result against its champion's stored figure. When the champion's
    checkpoint was re-scored on tonight's test day, that figure is used instead, so both models are
    judged on the same day."""
    fig = gate_figure(result)
    what = str(fig)
    rescored = result.get("champion_on_test")
    if rescored and rescored["version"] == champion_version:
        on_d = figure(rescored, fig)
        if on_d is not None:
            champion, what = on_d, f"{what} on {run_date}"
    return decide(result["model"], result["version"], figure(result, fig), champion, champion_version, tolerance,
                  what)


def validation_score(result: dict[str, Any]) -> float:
    """How well an autoencoder did on the validation day: its top-N figure where enough users validated,
    else next-item through item similarity (session sources have no per-user validation day)."""
    vm = result["fit"].get("valid_metrics", {})
    if vm.get("n_predictions", 0) >= MIN_VALID_PREDICTIONS and AUTOENCODER_VALID_METRIC in vm:
        return float(vm[AUTOENCODER_VALID_METRIC])
    return float(vm.get(AUTOENCODER_VALID_FALLBACK, -1.0))


def select_autoencoder(results: list[dict[str, Any]]) -> str | None:
    """The autoencoder to publish tonight: the best on the validation day (ties: the later name)."""
    scored = [(validation_score(r), r["model"]) for r in results if r["family"] == Family.AUTOENCODER]
    return max(scored)[1] if scored else None


def verdict(result: dict[str, Any], gate: GateDecision, selected_autoencoder: str | None) -> Verdict:
    """The status of one result: an autoencoder other than the selected one is not selected, whatever
    its gate; every other model is published or rejected by its gate."""
    if result["family"] == Family.AUTOENCODER and result["model"] != selected_autoencoder:
        return Verdict(result["model"], result["version"], Status.NOT_SELECTED,
                       f"{selected_autoencoder} validated better")
    status = Status.PUBLISHED if gate.publish else Status.REJECTED
    return Verdict(result["model"], result["version"], status, gate.reason)
