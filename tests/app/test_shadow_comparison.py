"""The comparison of a served model's answer with a shadow's, over any PyFunc output shape."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from app.observability.metrics import ShadowMetrics
from app.protocol.encoding import to_jsonable
from app.protocol.frames import FrameBuilder
from app.runtime import shadow as shadow_module
from app.runtime.comparison import (
    MAX_COMPARED_VALUES,
    MISSING,
    OTHER,
    UNNAMED_FIELD,
    BoundedLabels,
    compare_outputs,
    output_rows,
)
from app.runtime.model import ServedModel
from app.runtime.shadow import ShadowJob, ShadowScorer
from tests.support.demo import VALID_ROW


@pytest.mark.parametrize(
    ("outputs", "rows"),
    [
        ([{"label": "a", "p": 0.5}], [{"label": "a", "p": 0.5}]),  # a DataFrame's records
        ([1, 0], [{UNNAMED_FIELD: 1}, {UNNAMED_FIELD: 0}]),  # a Series, a 1-D array
        ([[0.1, 0.9]], [{"0": 0.1, "1": 0.9}]),  # a 2-D array
        ({"a": [1, 2], "b": ["x", "y"]}, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]),  # columns
        ({"a": 1, "b": "x"}, [{"a": 1, "b": "x"}]),  # one record
        ("yes", [{UNNAMED_FIELD: "yes"}]),  # one value (a string model)
    ],
)
def test_every_output_shape_becomes_rows_of_named_fields(
    outputs: Any, rows: list[dict[str, Any]]
) -> None:
    assert output_rows(outputs) == rows


def test_text_fields_are_counted_by_value_pair_and_numbers_by_difference() -> None:
    primary = [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.25}]
    shadow = [{"label": "a", "score": 0.75}, {"label": "a", "score": 0.25}]
    comparison = compare_outputs(primary, shadow, BoundedLabels())
    assert comparison.rows == 2
    assert comparison.pairs == {("label", "a", "a", True): 1, ("label", "b", "a", False): 1}
    assert comparison.differences == {"score": [0.25, 0.0]}


def test_numpy_numbers_are_numeric_and_booleans_are_classes() -> None:
    comparison = compare_outputs(
        [{"n": np.int64(3), "flag": True}], [{"n": np.float32(1.5), "flag": False}], BoundedLabels()
    )
    assert comparison.differences == {"n": [1.5]}
    assert comparison.pairs == {("flag", "True", "False", False): 1}


def test_a_field_one_side_lacks_is_counted_as_missing() -> None:
    comparison = compare_outputs([{"a": 1}], [{"a": 1, "b": "new"}], BoundedLabels())
    assert comparison.pairs == {("b", MISSING, "new", False): 1}
    assert comparison.differences == {"a": [0.0]}


def test_a_shadow_answering_another_row_count_is_mismatched_not_compared() -> None:
    comparison = compare_outputs([1, 2, 3], [1, 2], BoundedLabels())
    assert (comparison.rows, comparison.mismatched) == (0, 3)
    assert not comparison.pairs
    assert not comparison.differences


def test_a_non_finite_number_is_compared_as_a_value() -> None:
    comparison = compare_outputs([float("nan")], [0.5], BoundedLabels())
    assert comparison.pairs == {(UNNAMED_FIELD, "nan", "0.5", False): 1}


def test_distinct_values_beyond_the_bound_are_labelled_other() -> None:
    """Free text from a model cannot flood /metrics with series."""
    labels = BoundedLabels()
    texts = [f"text {i}" for i in range(MAX_COMPARED_VALUES + 5)]
    comparison = compare_outputs(texts, texts, labels)
    values = {pair[1] for pair in comparison.pairs}
    assert len(values) == MAX_COMPARED_VALUES + 1
    assert OTHER in values
    assert comparison.pairs[(UNNAMED_FIELD, OTHER, OTHER, True)] == 5


def test_values_that_share_a_label_are_still_compared_themselves() -> None:
    """Two long texts cut to the same label, or two values both past the bound, differ."""
    comparison = compare_outputs(["x" * 100 + "a"], ["x" * 100 + "b"], BoundedLabels())
    assert comparison.pairs == {(UNNAMED_FIELD, "x" * 64, "x" * 64, False): 1}


def test_a_missing_field_differs_from_a_value_spelt_missing() -> None:
    comparison = compare_outputs([{"a": MISSING}], [{}], BoundedLabels())
    assert comparison.pairs == {("a", MISSING, MISSING, False): 1}


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_full_queue_drops_and_counts_without_waiting(served_model: ServedModel) -> None:
    """Offered with no thread taking work: the second request finds the queue full."""
    registry = CollectorRegistry()
    shadow = ShadowScorer(
        served_model,
        FrameBuilder(served_model.input_schema),
        ShadowMetrics(registry),
        sample_rate=1.0,
        queue_size=1,
    )
    data = {name: [value] for name, value in VALID_ROW.items()}
    for _ in range(3):
        shadow.offer(data, True, None, 1, [{"score": 0.1}])
    assert _sample(registry, "model_shadow_rows_total", outcome="dropped") == 2
    shadow.stop()  # the one queued is dropped at shutdown, and counted too
    assert _sample(registry, "model_shadow_rows_total", outcome="dropped") == 3


def test_the_shadow_compares_its_own_answer_with_the_served_one(
    served_model: ServedModel,
) -> None:
    """The demo model shadowing itself agrees everywhere; a failure is counted, not raised."""
    registry = CollectorRegistry()
    shadow = ShadowScorer(
        served_model,
        FrameBuilder(served_model.input_schema),
        ShadowMetrics(registry),
        sample_rate=1.0,
        queue_size=4,
    )
    frame = FrameBuilder(served_model.input_schema)({k: [v] for k, v in VALID_ROW.items()})
    primary = served_model.predict(frame)
    shadow.score(ShadowJob(frame, False, None, 1, to_jsonable(primary)))
    assert _sample(registry, "model_shadow_rows_total", outcome="compared") == 1
    for name in ("risk_level", "decision"):
        value = str(primary[name].iloc[0])
        labels = {"field": name, "primary": value, "shadow": value, "agreed": "true"}
        assert _sample(registry, "model_shadow_agreement_total", **labels) == 1
    assert _sample(registry, "model_shadow_difference_bucket", field="score", le="0.0") == 1
    shadow.score(ShadowJob({"wrong": [1]}, True, None, 1, to_jsonable(primary)))
    assert _sample(registry, "model_shadow_rows_total", outcome="failed") == 1
    assert _sample(registry, "model_shadow_errors_total") == 1


def test_queued_requests_are_predicted_together_and_compared_each(
    served_model: ServedModel,
) -> None:
    """One predict for three requests; a request the model refuses is done again alone and
    fails alone, its neighbours still compared."""
    registry = CollectorRegistry()
    to_frame = FrameBuilder(served_model.input_schema)
    shadow = ShadowScorer(
        served_model, to_frame, ShadowMetrics(registry), sample_rate=1.0, queue_size=8
    )
    data = {name: [value, value] for name, value in VALID_ROW.items()}
    primary = to_jsonable(served_model.predict(to_frame(data)))
    good = ShadowJob(data, True, None, 2, primary)
    shadow.score_together([good, good, good])
    assert _sample(registry, "model_shadow_rows_total", outcome="compared") == 6
    assert _sample(registry, "model_shadow_predict_duration_seconds_count") == 1
    refused = ShadowJob({**data, "age": ["old", "older"]}, True, None, 2, primary)
    shadow.score_together([good, refused])
    assert _sample(registry, "model_shadow_rows_total", outcome="compared") == 8
    assert _sample(registry, "model_shadow_rows_total", outcome="failed") == 2
    assert _sample(registry, "model_shadow_errors_total") == 1


def _lingering_shadow(
    served_model: ServedModel, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> tuple[ShadowScorer, dict[str, list[Any]], list[Any]]:
    """A started combining shadow whose linger (1 s here) outlasts the test's spacing of
    offers, the row it is offered and the served answer for it."""
    monkeypatch.setattr(shadow_module, "LINGER_SECONDS", 1.0)
    to_frame = FrameBuilder(served_model.input_schema)
    shadow = ShadowScorer(
        served_model,
        to_frame,
        ShadowMetrics(registry),
        sample_rate=1.0,
        queue_size=8,
        combine=True,
    )
    data = {name: [value] for name, value in VALID_ROW.items()}
    shadow.start()
    return shadow, data, to_jsonable(served_model.predict(to_frame(data)))


def test_requests_that_come_while_the_shadow_lingers_share_one_predict(
    served_model: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    shadow, data, primary = _lingering_shadow(served_model, registry, monkeypatch)
    for _ in range(3):  # one at a time, as a client sending requests one after another
        shadow.offer(data, True, None, 1, primary)
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while _sample(registry, "model_shadow_rows_total", outcome="compared") < 3:
        assert time.monotonic() < deadline, "the shadow did not compare the three requests"
        time.sleep(0.05)
    assert _sample(registry, "model_shadow_predict_duration_seconds_count") == 1
    shadow.stop()


def test_requests_taken_while_lingering_are_dropped_at_a_stop(
    served_model: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    shadow, data, primary = _lingering_shadow(served_model, registry, monkeypatch)
    shadow.offer(data, True, None, 1, primary)
    time.sleep(0.1)  # the thread took it and lingers for more
    shadow.stop()
    assert _sample(registry, "model_shadow_rows_total", outcome="dropped") == 1
    assert _sample(registry, "model_shadow_rows_total", outcome="compared") == 0
    assert _sample(registry, "model_shadow_predict_duration_seconds_count") == 0
