"""What a model is handed, and how a body is read, are MLflow's: params None or {} as its
server passes them, JSON in UTF-16 and UTF-32, a CSV table for a type-hinted model.

MLflow's server is driven in-process through its own app factory
(`mlflow.pyfunc.scoring_server.init`) on the same model directory; the real
`mlflow models serve` comparison is tests/conformance.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc import scoring_server
from mlflow.pyfunc.model import PythonModel

from app.runtime.model import load_served_model
from tests.support.asgi import score_concurrently

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


class EchoesWhatItGets(PythonModel):
    """No signature: answers the type of its input and the params it was handed."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return {"input": type(model_input).__name__, "params": repr(params)}


class ReturnsItsInput(PythonModel):
    """No signature: answers exactly what it was handed."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


class EchoesParamsPerRow(PythonModel):
    """No signature, one answer per row: what micro-batching may combine."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [repr(params)] * len(model_input)


class HintedStrings(PythonModel):
    def predict(self, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:  # type: ignore[override]  # MLflow 3 type hints: predict without context, as MLflow allows
        return [text.upper() for text in model_input]


def _save(path: Path, model: PythonModel) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(path, python_model=model, pip_requirements=["mlflow"])
    return str(path)


@pytest.fixture(scope="module")
def echo_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _save(tmp_path_factory.mktemp("echo") / "model", EchoesWhatItGets())


@pytest.fixture(scope="module")
def returns_input_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _save(tmp_path_factory.mktemp("returns-input") / "model", ReturnsItsInput())


@pytest.fixture(scope="module")
def per_row_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _save(tmp_path_factory.mktemp("per-row") / "model", EchoesParamsPerRow())


@pytest.fixture(scope="module")
def hinted_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _save(tmp_path_factory.mktemp("hinted") / "model", HintedStrings())


def _answers(
    make_client: Callable[..., TestClient], model_dir: str, **settings: object
) -> Callable[[str, bytes], tuple[tuple[int, Any], tuple[int, Any]]]:
    ours = make_client(load_served_model(model_dir), **settings)
    theirs = TestClient(scoring_server.init(mlflow.pyfunc.load_model(model_dir)))

    def post(content_type: str, body: bytes) -> tuple[tuple[int, Any], tuple[int, Any]]:
        answers = []
        for client in (ours, theirs):
            response = client.post(
                "/invocations", content=body, headers={"Content-Type": content_type}
            )
            is_json = response.headers["content-type"].startswith(JSON)
            answers.append((response.status_code, response.json() if is_json else response.text))
        return answers[0], answers[1]

    return post


def _agree(ours: tuple[int, Any], theirs: tuple[int, Any]) -> bool:
    """As tests/conformance compares: the same status; then the same body for a 200, the
    same error code otherwise (messages are ours)."""
    if ours[0] != theirs[0]:
        return False
    if ours[0] == 200:
        return bool(ours[1] == theirs[1])
    return bool(ours[1]["error_code"] == theirs[1]["error_code"])


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


RECORDS = [{"x": 1.0, "y": "a"}]
# The rule MLflow's server follows: a JSON body's `params` as sent (None when absent or
# null), an unwrapped LLM body's params as a dict (empty without a params schema), none for
# CSV; PyFuncModel.predict then turns anything but None and {} into {} for such a model.
PARAMS_BODIES = {
    "unwrapped-messages": (JSON, _json({"messages": [{"role": "user", "content": "hi"}]})),
    "unwrapped-prompt": (JSON, _json({"prompt": "hello"})),
    "unwrapped-input": (JSON, _json({"input": ["a", "b"]})),
    "unwrapped-with-extra-key": (JSON, _json({"prompt": "hello", "temperature": 0.5})),
    "records-without-params": (JSON, _json({"dataframe_records": RECORDS})),
    "records-params-null": (JSON, _json({"dataframe_records": RECORDS, "params": None})),
    "records-params-empty": (JSON, _json({"dataframe_records": RECORDS, "params": {}})),
    "records-params-undeclared": (JSON, _json({"dataframe_records": RECORDS, "params": {"k": 1}})),
    "csv": (CSV, b"x,y\n1.0,a\n"),
}


@pytest.mark.parametrize("batching", [False, True], ids=["alone", "batching"])
@pytest.mark.parametrize("case", PARAMS_BODIES.values(), ids=PARAMS_BODIES.keys())
def test_a_model_without_signature_gets_params_as_mlflow_hands_them(
    make_client: Callable[..., TestClient],
    echo_dir: str,
    case: tuple[str, bytes],
    batching: bool,
) -> None:
    ours, theirs = _answers(make_client, echo_dir, batching=batching)(*case)
    assert ours == theirs
    assert ours[0] == 200


def test_batching_keeps_absent_params_apart_from_empty_ones(
    make_client: Callable[..., TestClient], per_row_dir: str
) -> None:
    """Concurrent requests with no params and with `{}` are predicted apart: such a model
    is handed None for one and {} for the other, as MLflow's server hands them."""
    bodies: list[dict[str, object]] = [
        {"dataframe_records": RECORDS, **({"params": {}} if index % 2 else {})}
        for index in range(12)
    ]
    theirs = TestClient(scoring_server.init(mlflow.pyfunc.load_model(per_row_dir)))
    expected = [theirs.post("/invocations", json=body).json() for body in bodies]
    ours = make_client(load_served_model(per_row_dir), batching=True, max_concurrent_requests=12)
    responses = score_concurrently(ours, bodies)
    assert [response.json() for response in responses] == expected
    assert {str(answer) for answer in expected} == {
        "{'predictions': ['None']}",
        "{'predictions': ['{}']}",
    }


ENCODED = {
    "utf-16": _json({"dataframe_records": RECORDS}).decode().encode("utf-16"),
    "utf-16-le-without-bom": _json({"dataframe_records": RECORDS}).decode().encode("utf-16-le"),
    "utf-16-be-without-bom": _json({"dataframe_records": RECORDS}).decode().encode("utf-16-be"),
    "utf-32": _json({"dataframe_records": RECORDS}).decode().encode("utf-32"),
    "utf-8-with-bom": _json({"dataframe_records": RECORDS}).decode().encode("utf-8-sig"),
    "unwrapped-utf-16": _json({"prompt": "héllo"}).decode().encode("utf-16"),
}


@pytest.mark.parametrize("body", ENCODED.values(), ids=ENCODED.keys())
def test_json_in_utf16_and_utf32_is_read_as_mlflow_reads_it(
    make_client: Callable[..., TestClient], echo_dir: str, body: bytes
) -> None:
    ours, theirs = _answers(make_client, echo_dir)(JSON, body)
    assert ours == theirs
    assert ours[0] == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (JSON, b"\xff\xfe{\x00"),  # UTF-16 cut in the middle of a character
        (
            JSON + "; charset=utf-16",
            _json({"dataframe_records": RECORDS}).decode().encode("utf-16"),
        ),
    ],
    ids=["truncated-utf-16", "utf-16-charset"],
)
def test_what_mlflow_refuses_in_other_encodings_is_refused(
    make_client: Callable[..., TestClient], echo_dir: str, content_type: str, body: bytes
) -> None:
    (status, answer), (mlflow_status, _) = _answers(make_client, echo_dir)(content_type, body)
    assert status == mlflow_status
    assert set(answer) == {"error_code", "message"}


def _parquet(frame: pd.DataFrame) -> bytes:
    return frame.to_parquet(index=False)


HINTED_TABLES = {
    "csv": (CSV, b"text\na\nbc\n"),
    "csv-two-columns": (CSV, b"a,b\nx,y\n"),
    "csv-numbers": (CSV, b"n\n1\n2\n"),
    "csv-header-only": (CSV, b"text\n"),
    "parquet": (PARQUET, _parquet(pd.DataFrame({"text": ["a", "bc"]}))),
}


@pytest.mark.parametrize("case", HINTED_TABLES.values(), ids=HINTED_TABLES.keys())
def test_a_type_hinted_model_gets_a_table_as_mlflow_reads_it(
    make_client: Callable[..., TestClient], hinted_dir: str, case: tuple[str, bytes]
) -> None:
    ours, theirs = _answers(make_client, hinted_dir)(*case)
    assert _agree(ours, theirs), f"ours {ours} / MLflow {theirs}"


def test_a_lone_surrogate_the_model_returns_is_answered_as_mlflow_escapes_it(
    make_client: Callable[..., TestClient], returns_input_dir: str
) -> None:
    """JSON may escape half a surrogate pair; orjson refuses to write one back, MLflow's
    json.dumps writes its escape: 200 with the same answer, not a 500."""
    body = b'{"prompt": "half a pair: \\ud800"}'
    ours, theirs = _answers(make_client, returns_input_dir)(JSON, body)
    assert ours == theirs
    assert ours == (200, {"prompt": "half a pair: \ud800"})
