"""Pure business rules of credit-risk scoring: thresholds, risk levels, decisions.

Nothing here imports MLflow or a web framework, so the rules are tested on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_LOW_THRESHOLD = 0.3
DEFAULT_HIGH_THRESHOLD = 0.7

DECISION_BY_RISK_LEVEL = {"low": "approve", "medium": "manual_review", "high": "decline"}


class InvalidThresholdsError(ValueError):
    """Raised when thresholds do not satisfy 0 <= low < high <= 1."""


@dataclass(frozen=True)
class RiskThresholds:
    """Score cut-offs: below `low` is low risk, at or above `high` is high risk."""

    low: float = DEFAULT_LOW_THRESHOLD
    high: float = DEFAULT_HIGH_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            # The values are left out: they may come from a request, and errors never echo input.
            raise InvalidThresholdsError("risk thresholds must satisfy 0 <= low < high <= 1")

    @classmethod
    def from_mapping(cls, config: dict[str, Any] | None) -> RiskThresholds:
        """Read `low_threshold` / `high_threshold` from a model config or request params."""
        config = config or {}
        return cls(
            low=float(config.get("low_threshold", DEFAULT_LOW_THRESHOLD)),
            high=float(config.get("high_threshold", DEFAULT_HIGH_THRESHOLD)),
        )


def classify_risk(score: float, thresholds: RiskThresholds) -> str:
    """Map a probability of default to `low`, `medium` or `high`."""
    if score < thresholds.low:
        return "low"
    if score >= thresholds.high:
        return "high"
    return "medium"


def decide(risk_level: str) -> str:
    """The action a lending workflow takes for a risk level."""
    return DECISION_BY_RISK_LEVEL[risk_level]


def score_rows(probabilities: Sequence[float], thresholds: RiskThresholds) -> dict[str, list[Any]]:
    """Business output, column-wise, for a batch of positive-class probabilities."""
    scores = [float(p) for p in probabilities]
    levels = [classify_risk(score, thresholds) for score in scores]
    return {
        "score": scores,
        "risk_level": levels,
        "decision": [decide(level) for level in levels],
    }
