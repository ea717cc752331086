"""Each peer's request body carries the same rows, and each answer reads back as rows."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from bench.payloads import make_frame, make_wide_frame
from bench.peers import formats
from bench.verify import verify_rows


@pytest.fixture(params=["demo", "identity"])
def frame(request: pytest.FixtureRequest) -> pd.DataFrame:
    """Mixed ints, floats and strings (the demo's applicants), and doubles only."""
    return make_frame(3) if request.param == "demo" else make_wide_frame(5, 3)


def test_mlflow_body_is_dataframe_split_of_the_rows(frame: pd.DataFrame) -> None:
    split = json.loads(formats.mlflow_body(frame))["dataframe_split"]
    rebuilt = pd.DataFrame(split["data"], columns=split["columns"])
    pd.testing.assert_frame_equal(rebuilt, frame, check_dtype=False)


def test_v2_body_has_one_typed_input_per_column(frame: pd.DataFrame) -> None:
    body = json.loads(formats.v2_body(frame))
    assert body["parameters"] == {"content_type": "pd"}
    assert [tensor["name"] for tensor in body["inputs"]] == list(frame.columns)
    for tensor in body["inputs"]:
        column = frame[tensor["name"]]
        assert tensor["shape"] == [len(frame)]
        assert tensor["data"] == column.tolist()
        expected = {"i": "INT64", "f": "FP64"}.get(column.dtype.kind, "BYTES")
        assert tensor["datatype"] == expected
        if expected == "BYTES":
            assert tensor["parameters"] == {"content_type": "str"}
        else:
            assert "parameters" not in tensor


def test_demo_strings_travel_as_bytes() -> None:
    datatypes = {
        t["name"]: t["datatype"] for t in json.loads(formats.v2_body(make_frame(1)))["inputs"]
    }
    assert datatypes["employment_status"] == "BYTES"
    assert datatypes["age"] == "INT64"
    assert datatypes["income"] == "FP64"


def test_bentoml_body_is_the_argument_with_records(frame: pd.DataFrame) -> None:
    body = json.loads(formats.bentoml_body(frame))
    assert list(body) == [formats.BENTOML_ARGUMENT]
    pd.testing.assert_frame_equal(pd.DataFrame(body[formats.BENTOML_ARGUMENT]), frame)


ROWS: list[dict[str, Any]] = [
    {"score": 0.25, "risk_level": "low", "model_version": "3"},
    {"score": 0.75, "risk_level": "high", "model_version": "3"},
]
V2_ANSWER = {
    "model_name": "model",
    "outputs": [
        {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.25, 0.75]},
        {"name": "risk_level", "shape": [2], "datatype": "BYTES", "data": ["low", "high"]},
        {"name": "model_version", "shape": [2], "datatype": "BYTES", "data": ["", ""]},
    ],
}


def test_each_protocol_reads_back_as_the_same_rows() -> None:
    assert formats.mlflow_rows(json.dumps({"predictions": ROWS}).encode()) == ROWS
    assert formats.bentoml_rows(json.dumps(ROWS).encode()) == ROWS
    read = formats.v2_rows(json.dumps(V2_ANSWER).encode())
    assert [{k: v for k, v in row.items() if k != "model_version"} for row in read] == [
        {"score": 0.25, "risk_level": "low"},
        {"score": 0.75, "risk_level": "high"},
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"outputs": []},
        {"error": "boom"},
        {"outputs": [{"name": "a", "data": [1, 2]}, {"name": "b", "data": [1]}]},
    ],
)
def test_a_malformed_v2_answer_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(formats.AnswerFormatError):
        formats.v2_rows(json.dumps(answer).encode())


def test_a_peer_answering_the_same_predictions_passes() -> None:
    check = verify_rows(2, ROWS, "kserve", 200, json.dumps(V2_ANSWER).encode(), formats.v2_rows)
    assert check.equal, check.detail
    assert check.statuses == {"ours": 200, "kserve": 200}


def test_a_peer_answering_other_predictions_fails_the_check() -> None:
    other = json.loads(json.dumps(V2_ANSWER))
    other["outputs"][0]["data"] = [0.25, 0.7500001]
    check = verify_rows(2, ROWS, "mlserver", 200, json.dumps(other).encode(), formats.v2_rows)
    assert not check.equal
    assert "row 1 score" in check.detail


@pytest.mark.parametrize(("status", "answer"), [(500, b"{}"), (200, b"not json")])
def test_an_error_or_unreadable_answer_fails_the_check(status: int, answer: bytes) -> None:
    check = verify_rows(2, ROWS, "bentoml", status, answer, formats.bentoml_rows)
    assert not check.equal
