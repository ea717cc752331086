"""The rules file and its checks, without a server (app.guardrails)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.guardrails.breaker import Breaker
from app.guardrails.engine import RuleEngine, RuleResult
from app.guardrails.rules import (
    BreakerConfig,
    Fields,
    GuardrailsError,
    check_fits,
    fields_of_signature,
    parse_rules,
)

RULES = """\
version: 1
rules:
  - {id: age-range, column: age, min: 18, max: 100, severity: critical, mode: enforce}
  - {id: channel-known, column: channel, in: [web, branch], not_null: true,
     severity: major, mode: warn}
  - {id: score-bounds, output: score, gt: 0, lt: 1, severity: critical, mode: enforce}
  - id: high-score-reviewed
    when: {output: score, gt: 0.8}
    then: {output: decision, in: [review]}
    severity: major
    mode: warn
  - id: loan-below-income
    compare: {left: loan, op: le, right: income}
    severity: minor
    mode: shadow
  - id: decision-matches
    compare: {left: output.decision, op: ne, right: input.channel}
    severity: minor
    mode: shadow
"""
FIELDS = Fields(
    inputs={"age": "numeric", "channel": "text", "loan": "numeric", "income": "numeric"},
    outputs={"score": "numeric", "decision": "text"},
)
INPUTS = {
    "age": [15, 30, None, 130],
    "channel": ["web", "fax", None, "branch"],
    "loan": [1.0, 5.0, 3.0, math.nan],
    "income": [2.0, 4.0, 3.0, 1.0],
}
OUTPUTS = {"score": [0.9, 0.2, 1.5, None], "decision": ["approve", "x", "review", "branch"]}


def _broken(results: list[RuleResult]) -> dict[str, list[int]]:
    return {result.rule.id: result.broken.tolist() for result in results}


def test_each_rule_finds_exactly_the_rows_that_break_it() -> None:
    engine = RuleEngine(parse_rules(RULES))
    assert _broken(engine.check_inputs(INPUTS, 4)) == {
        "age-range": [0, 3],  # a missing age breaks no range
        "channel-known": [1, 2],  # unknown, and missing under not_null
        "loan-below-income": [1],  # a missing side is not compared
    }
    assert _broken(engine.check_outputs(INPUTS, OUTPUTS, 4)) == {
        "score-bounds": [2],
        "high-score-reviewed": [0],
        "decision-matches": [3],
    }


def test_a_dataframe_gives_the_same_answer_as_column_lists() -> None:
    engine = RuleEngine(parse_rules(RULES))
    frame = pd.DataFrame(INPUTS)
    assert _broken(engine.check(frame, pd.DataFrame(OUTPUTS))) == _broken(
        engine.check(INPUTS, OUTPUTS)
    )


def test_a_column_the_table_lacks_counts_as_missing() -> None:
    engine = RuleEngine(parse_rules(RULES))
    broken = _broken(engine.check_inputs({"age": np.array([20, 21])}, 2))
    assert broken["channel-known"] == [0, 1]
    assert broken["age-range"] == []


def test_a_large_allowed_set_checks_as_a_small_one() -> None:
    allowed = [f"c{i}" for i in range(100)]
    rules = parse_rules(
        "version: 1\nrules:\n  - {id: big, column: c, severity: minor, mode: shadow, in: "
        f"[{', '.join(allowed)}]}}\n"
    )
    result = RuleEngine(rules).check_inputs({"c": ["c5", "nope", "c99"]}, 3)
    assert result[0].broken.tolist() == [1]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("mode: enforce}", "mode: enforce, colour: red}"), "rule 'age-range' field 'colour'"),
        (("min: 18", "min: eighteen"), "rule 'age-range' field 'min'"),
        (("mode: enforce}", "mode: block}"), "rule 'age-range' field 'mode'"),
        (("id: loan-below-income", "id: age-range"), "rule id 'age-range' is used twice"),
        (("{id: age-range, column: age, min: 18, max: 100,", "{id: age-range, column: age,"), ""),
        (("version: 1", "version: 2"), "field 'version'"),
        (("when: {output: score, gt: 0.8}", "when: {output: score, column: age, gt: 0.8}"), ""),
    ],
)
def test_a_malformed_file_is_refused_naming_the_rule(change: tuple[str, str], named: str) -> None:
    text = RULES.replace(*change)
    assert text != RULES
    with pytest.raises(GuardrailsError, match=named or "."):
        parse_rules(text)


def test_text_that_is_not_a_rules_mapping_is_refused() -> None:
    for text in ("[1, 2]", "version: [", ""):
        with pytest.raises(GuardrailsError):
            parse_rules(text)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            Fields({**FIELDS.inputs, "age": "text"}, FIELDS.outputs),  # type: ignore[dict-item]
            "rule 'age-range': min/max/gt/lt need a numeric column",
        ),
        (
            Fields({"age": "numeric"}, FIELDS.outputs),
            "rule 'channel-known': input column 'channel' is not in the model's signature",
        ),
        (
            Fields({**FIELDS.inputs, "channel": "numeric"}, FIELDS.outputs),  # type: ignore[dict-item]
            "rule 'channel-known': 'in' lists a non-number",
        ),
        (
            Fields(FIELDS.inputs, {"score": "numeric"}),
            "rule 'high-score-reviewed': output field 'decision' is not in",
        ),
        (Fields(None, FIELDS.outputs), "rule 'age-range': the model has no signature"),
        (
            Fields({**FIELDS.inputs, "channel": "other"}, FIELDS.outputs),  # type: ignore[dict-item]
            "rule 'channel-known': 'in' needs a text, numeric or boolean column",
        ),
        (
            Fields({**FIELDS.inputs, "income": "text"}, FIELDS.outputs),  # type: ignore[dict-item]
            "rule 'loan-below-income': 'le' compares numbers",
        ),
    ],
)
def test_rules_that_do_not_fit_the_signature_are_refused(fields: Fields, named: str) -> None:
    with pytest.raises(GuardrailsError, match=named):
        check_fits(parse_rules(RULES), fields)


def test_rules_fit_the_signature_they_name_and_outputs_undeclared_are_not_checked() -> None:
    check_fits(parse_rules(RULES), FIELDS)
    check_fits(parse_rules(RULES), Fields(FIELDS.inputs, None))


def test_fields_come_from_mlflows_signature_dict() -> None:
    signature = {
        "inputs": '[{"type": "long", "name": "age"}, {"type": "string", "name": "channel"}]',
        "outputs": None,
    }
    fields = fields_of_signature(signature)
    assert fields == Fields({"age": "numeric", "channel": "text"}, None)
    tensor = {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64"}}]'}
    assert fields_of_signature(tensor) == Fields({}, None)
    unnamed = {**signature, "outputs": '[{"type": "long", "required": true}]'}
    with pytest.raises(GuardrailsError, match="output field 'score' is not in"):
        check_fits(parse_rules(RULES), fields_of_signature({**unnamed, "inputs": None}))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_past_its_share_and_closes_after_its_cool_down() -> None:
    clock = _Clock()
    config = BreakerConfig(max_violation_share=0.5, window_seconds=10, min_requests=4)
    breaker = Breaker(config, clock)
    for violated in (True, True, True):
        breaker.record(violated)
    assert not breaker.is_open()  # fewer than min_requests
    breaker.record(False)
    assert breaker.is_open()  # 3 of 4
    clock.now += 9
    assert breaker.is_open()
    clock.now += 1
    assert not breaker.is_open()
    assert breaker.share == 0.0  # a fresh window after the cool-down


def test_the_breaker_forgets_requests_older_than_its_window() -> None:
    clock = _Clock()
    breaker = Breaker(
        BreakerConfig(max_violation_share=0.5, window_seconds=5, min_requests=2), clock
    )
    breaker.record(True)
    clock.now += 6
    breaker.record(False)
    breaker.record(False)
    assert breaker.share == 0.0
    assert not breaker.is_open()
