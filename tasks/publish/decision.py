"""The gate: publish a challenger only if its P4 figure is not worse than the champion's beyond a tolerance."""

from __future__ import annotations

from dataclasses import dataclass

# The figure each family is judged by (protocol, metric, k).
PRIMARY = {
    "session": ("P4-session", "HR", 20),
    "user": ("P4-user", "HR", 10),
    "autoencoder": ("P4-similar", "HR", 20),
}


@dataclass(frozen=True)
class GateDecision:
    model: str
    version: str
    publish: bool
    reason: str
    challenger: float | None
    champion: float | None
    champion_version: str | None


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
