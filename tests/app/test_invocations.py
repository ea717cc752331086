"""POST /invocations on the real demo model: every input format, params, business output."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo

ROWS = [VALID_ROW, RISKY_ROW]
COLUMNS = list(VALID_ROW)

JSON_BODIES = {
    "dataframe_records": {"dataframe_records": ROWS},
    "dataframe_split": {
        "dataframe_split": {"columns": COLUMNS, "data": [list(r.values()) for r in ROWS]}
    },
    "dataframe_split_with_index": {
        "dataframe_split": {
            "index": [10, 11],
            "columns": COLUMNS,
            "data": [list(r.values()) for r in ROWS],
        }
    },
    "instances": {"instances": ROWS},
    "inputs_records": {"inputs": ROWS},
    "inputs_columns": {"inputs": {c: [r[c] for r in ROWS] for c in COLUMNS}},
    "data": {"data": ROWS},
}


@pytest.fixture(scope="module")
def expected(client: TestClient) -> list[dict[str, object]]:
    response = client.post("/invocations", json={"dataframe_records": ROWS})
    assert response.status_code == 200
    predictions: list[dict[str, object]] = response.json()["predictions"]
    return predictions


@pytest.mark.parametrize("body", JSON_BODIES.values(), ids=JSON_BODIES.keys())
def test_every_json_format_gives_the_same_predictions(
    client: TestClient, body: dict[str, object], expected: list[dict[str, object]]
) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8"])
def test_csv_gives_the_same_predictions(
    client: TestClient, content_type: str, expected: list[dict[str, object]]
) -> None:
    body = pd.DataFrame(ROWS).to_csv(index=False)
    response = client.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_parquet_gives_the_same_predictions(
    client: TestClient, expected: list[dict[str, object]]
) -> None:
    buffer = io.BytesIO()
    pd.DataFrame(ROWS).to_parquet(buffer)
    response = client.post(
        "/invocations",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_business_output_per_row(client: TestClient, registry: RegisteredDemo) -> None:
    response = client.post("/invocations", json={"dataframe_records": ROWS})
    safe, risky = response.json()["predictions"]
    assert set(safe) == {"score", "risk_level", "decision", "model_name", "model_version"}
    assert 0.0 <= safe["score"] < risky["score"] <= 1.0
    assert risky["risk_level"] == "high"
    assert risky["decision"] == "decline"
    assert safe["model_name"] == "credit-risk-scoring"
    assert safe["model_version"] == registry.version


def test_params_override_thresholds_for_one_request(client: TestClient) -> None:
    body = {
        "dataframe_records": [VALID_ROW],
        "params": {"low_threshold": 0.0001, "high_threshold": 0.0002},
    }
    assert client.post("/invocations", json=body).json()["predictions"][0]["risk_level"] == "high"
    plain = client.post("/invocations", json={"dataframe_records": [VALID_ROW]})
    assert plain.json()["predictions"][0]["risk_level"] != "high"


def test_integer_values_for_double_columns_are_accepted(client: TestClient) -> None:
    row = {**VALID_ROW, "income": 85000, "loan_amount": 12000}
    response = client.post("/invocations", json={"dataframe_records": [row]})
    assert response.status_code == 200, response.text


def test_extra_columns_are_ignored_as_mlflow_does(client: TestClient) -> None:
    response = client.post(
        "/invocations", json={"dataframe_records": [{**VALID_ROW, "favourite_colour": "blue"}]}
    )
    assert response.status_code == 200, response.text


def test_every_response_has_a_request_id_and_the_model_version(
    client: TestClient, registry: RegisteredDemo
) -> None:
    echoed = client.post(
        "/invocations", json={"data": [VALID_ROW]}, headers={"X-Request-ID": "req-42"}
    )
    assert echoed.headers["x-request-id"] == "req-42"
    assert echoed.headers["x-model-version"] == registry.version
    assert echoed.headers["x-model-name"] == registry.name
    generated = client.get("/livez")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = client.get("/livez", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500
