"""The business rules on their own: no MLflow, no server."""

from __future__ import annotations

import pytest

from model_wrapper.rules import (
    InvalidThresholdsError,
    RiskThresholds,
    classify_risk,
    decide,
    score_rows,
)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, "low"),
        (0.2999, "low"),
        (0.3, "medium"),
        (0.6999, "medium"),
        (0.7, "high"),
        (1.0, "high"),
    ],
)
def test_default_thresholds_split_scores_at_point_three_and_point_seven(
    score: float, level: str
) -> None:
    assert classify_risk(score, RiskThresholds()) == level


def test_custom_thresholds_move_the_boundaries() -> None:
    thresholds = RiskThresholds(low=0.1, high=0.5)
    assert [classify_risk(s, thresholds) for s in (0.05, 0.1, 0.49, 0.5)] == [
        "low",
        "medium",
        "medium",
        "high",
    ]


@pytest.mark.parametrize(("low", "high"), [(0.7, 0.3), (0.5, 0.5), (-0.1, 0.5), (0.2, 1.5)])
def test_thresholds_out_of_order_or_range_are_rejected(low: float, high: float) -> None:
    with pytest.raises(InvalidThresholdsError, match="0 <= low < high <= 1"):
        RiskThresholds(low=low, high=high)


def test_thresholds_are_read_from_a_model_config() -> None:
    config = {"low_threshold": 0.25, "high_threshold": 0.8, "model_name": "x"}
    assert RiskThresholds.from_mapping(config) == RiskThresholds(0.25, 0.8)
    assert RiskThresholds.from_mapping(None) == RiskThresholds(0.3, 0.7)


def test_each_risk_level_has_a_decision() -> None:
    assert [decide(level) for level in ("low", "medium", "high")] == [
        "approve",
        "manual_review",
        "decline",
    ]


def test_score_rows_gives_columns_of_equal_length() -> None:
    output = score_rows([0.1, 0.5, 0.9], RiskThresholds())
    assert output == {
        "score": [0.1, 0.5, 0.9],
        "risk_level": ["low", "medium", "high"],
        "decision": ["approve", "manual_review", "decline"],
    }
