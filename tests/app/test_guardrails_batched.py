"""The business rules over a micro-batch: one pass over the combined rows, each request
judged, counted for the breaker and refused on its own rows (app.runtime.batching)."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest
from mlflow.models import infer_signature

from app.errors import GuardrailViolationError
from app.guardrails.rules import parse_rules
from app.observability.metrics import ServingMetrics
from app.protocol.encoding import to_jsonable
from app.protocol.frames import ColumnData, FrameBuilder
from app.readiness import Readiness
from app.runtime.batching import MicroBatcher
from app.runtime.guardrails import RequestGuardrails
from tests.support.guarded import APPLICANTS, AmountScore

RULES = """\
version: 1
rules:
  - {id: adult, column: age, min: 18, severity: critical, mode: enforce}
  - {id: amount-cap, column: amount, max: 3000, severity: major, mode: warn}
  - {id: score-bounds, output: score, max: 5, severity: critical, mode: enforce}
breaker: {max_violation_share: 0.5, window_seconds: 30, min_requests: 4, open_seconds: 30}
"""
FRAME = APPLICANTS[["age", "amount", "channel"]]


def _columns(*rows: tuple[int, float]) -> ColumnData:
    return {
        "age": [age for age, _ in rows],
        "amount": [amount for _, amount in rows],
        "channel": ["web"] * len(rows),
    }


def _counted(metrics: ServingMetrics, name: str, rule: str) -> float | None:
    assert metrics.registry is not None
    value = metrics.registry.get_sample_value(name, {"rule": rule})
    if value is not None:
        return value
    for family in metrics.registry.collect():  # the rule's one label set, whatever its others
        for sample in family.samples:
            if sample.name == name and sample.labels.get("rule") == rule:
                return sample.value
    return None


def test_a_batch_is_checked_once_and_each_request_judged_on_its_own_rows() -> None:
    model = AmountScore()
    schema = infer_signature(FRAME, model.predict(None, FRAME)).inputs  # type: ignore[arg-type]
    metrics = ServingMetrics()
    guardrails = RequestGuardrails(parse_rules(RULES), metrics, Readiness())
    calls: list[int] = []

    def predict(frame: pd.DataFrame, params: dict[str, Any] | None) -> Any:
        return to_jsonable(model.predict(None, frame))  # type: ignore[arg-type]

    requests = [
        _columns((30, 100.0), (40, 4000.0)),  # answered; row 1 warned (amount > 3000)
        _columns((30, 100.0), (12, 200.0)),  # refused before predict: row 1 under 18
        _columns((50, 300.0), (45, 6000.0)),  # refused after: row 1 scores 6 > 5 (and warned)
        _columns((25, 500.0)),  # answered
    ]

    async def score_together() -> list[Any]:
        batcher = MicroBatcher(
            predict,
            FrameBuilder(schema),
            enabled=True,
            max_batch_rows=100,
            max_wait_seconds=0,
            inline_max_seconds=0,
            observe_batch=calls.append,
            guardrails=guardrails,
        )
        futures = [batcher.submit(data, len(data["age"]), None) for data in requests]
        batcher.start()  # every request is queued: the consumer takes them as one group
        try:
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            await batcher.stop()

    answered, refused_input, refused_output, answered_alone = asyncio.run(score_together())

    assert calls == [5], "the admitted requests' rows were predicted in one call"
    assert [row["score"] for row in answered] == [0.1, 4.0]
    assert [row["score"] for row in answered_alone] == [0.5]
    assert isinstance(refused_input, GuardrailViolationError)
    assert "rule 'adult' (critical) on input 'age' at row 1" in refused_input.message
    assert isinstance(refused_output, GuardrailViolationError)
    assert "rule 'score-bounds' (critical) on output 'score' at row 1" in refused_output.message
    assert "rows" not in refused_output.message, "only its own broken row is named"
    # Every request's rows counted once: 7 inputs; outputs of the 5 predicted rows.
    assert _counted(metrics, "guardrail_checked_rows_total", "adult") == 7
    assert _counted(metrics, "guardrail_violating_rows_total", "adult") == 1
    assert _counted(metrics, "guardrail_violating_rows_total", "amount-cap") == 2
    assert _counted(metrics, "guardrail_checked_rows_total", "score-bounds") == 5
    assert _counted(metrics, "guardrail_violating_rows_total", "score-bounds") == 1
    # The breaker counted each request once: 2 of the 4 broke a critical rule.
    assert guardrails.breaker is not None
    assert guardrails.breaker.share == 0.5
    assert not guardrails.breaker.is_open()


@pytest.mark.parametrize("refused_row", [0, 2])
def test_a_request_alone_names_its_rows_as_it_sent_them(refused_row: int) -> None:
    metrics = ServingMetrics()
    guardrails = RequestGuardrails(parse_rules(RULES), metrics, Readiness())
    rows = [(30, 100.0)] * 3
    rows[refused_row] = (10, 100.0)
    verdict = guardrails.judge_inputs(_columns(*rows), [3])[0]
    assert verdict.refusal is not None
    assert f"at row {refused_row}" in verdict.refusal.message
