"""Micro-batching keeps every prediction; limits, timeouts, API keys and drift behave."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runtime.model import ServedModel
from app.settings import Settings
from registry_scripts.demo_data import LABEL, make_credit_dataset
from tests.support.asgi import score_concurrently
from tests.support.demo import VALID_ROW
from tests.support.waiting import READY_SECONDS, wait_ready


def _records(n_rows: int, seed: int) -> list[dict[str, Any]]:
    frame = make_credit_dataset(n_rows=n_rows, seed=seed).drop(columns=[LABEL])
    return frame.to_dict(orient="records")  # type: ignore[return-value]


def test_batched_predictions_equal_unbatched_single_request_results(
    make_client: Callable[..., TestClient], served_model: ServedModel
) -> None:
    """60 concurrent requests (1 to 7 rows, some with params) against one request at a time."""
    rows = _records(240, seed=11)
    bodies: list[dict[str, object]] = []
    start = 0
    for index in range(60):
        size = 1 + index % 7
        body: dict[str, object] = {"dataframe_records": rows[start : start + size]}
        if index % 5 == 0:
            body["params"] = {"low_threshold": 0.2, "high_threshold": 0.5}
        bodies.append(body)
        start = (start + size) % 200
    unbatched = make_client(batching=False)
    expected = [unbatched.post("/invocations", json=body).json() for body in bodies]

    batched = make_client(max_concurrent_requests=len(bodies))  # whatever warm-up measured
    responses = score_concurrently(batched, bodies)
    assert [r.status_code for r in responses] == [200] * len(bodies)
    assert [r.json() for r in responses] == expected
    metrics = batched.get("/metrics").text
    combined = [line for line in metrics.splitlines() if line.startswith("model_batch_rows_count")]
    calls = float(combined[0].split()[-1])
    assert calls < len(bodies), "no request was combined with another"


def test_one_bad_request_does_not_fail_its_batch_neighbours(
    make_client: Callable[..., TestClient],
) -> None:
    good = {"dataframe_records": [VALID_ROW]}
    bad = {"dataframe_records": [{**VALID_ROW, "age": "old"}]}
    client = make_client(max_concurrent_requests=5)  # whatever warm-up measured
    responses = score_concurrently(client, [good, bad, good, bad, good])
    assert [r.status_code for r in responses] == [200, 422, 200, 422, 200]


def test_body_over_the_limit_is_413_before_it_is_read(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_body_bytes=2048)
    big = {"dataframe_records": [VALID_ROW] * 50}
    response = client.post("/invocations", json=big)
    assert response.status_code == 413
    assert response.json() == {
        "error_code": "RESOURCE_LIMIT_EXCEEDED",
        "message": "the request body is larger than 2048 bytes (MAX_BODY_BYTES)",
    }


def test_chunked_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)

    def chunks() -> object:
        for _ in range(100):
            yield b" " * 100

    response = client.post(
        "/invocations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"


def test_gzip_body_is_accepted_and_a_gzip_bomb_is_413(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_body_bytes=8192)
    small = gzip.compress(json.dumps({"dataframe_records": [VALID_ROW]}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert client.post("/invocations", content=small, headers=headers).status_code == 200
    bomb = gzip.compress(b'{"data": "' + b"A" * 5_000_000 + b'"}')
    assert len(bomb) < 8192  # small on the wire, 5 MB inflated
    response = client.post("/invocations", content=bomb, headers=headers)
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"


def test_too_many_rows_is_413_naming_the_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_request_rows=5)
    response = client.post("/invocations", json={"dataframe_records": [VALID_ROW] * 6})
    assert response.status_code == 413
    assert response.json() == {
        "error_code": "RESOURCE_LIMIT_EXCEEDED",
        "message": "the request holds 6 rows; the limit is 5 (MAX_REQUEST_ROWS)",
    }


def test_api_keys_guard_scoring_but_not_probes(
    make_client: Callable[..., TestClient], tmp_path: object
) -> None:
    client = make_client(api_keys="key-one, key-two", metrics_public=False)
    body = {"dataframe_records": [VALID_ROW]}
    none = client.post("/invocations", json=body)
    wrong = client.post("/invocations", json=body, headers={"Authorization": "Bearer nope"})
    right = client.post("/invocations", json=body, headers={"Authorization": "Bearer key-two"})
    header = client.post("/invocations", json=body, headers={"X-API-Key": "key-one"})
    assert (none.status_code, wrong.status_code, right.status_code, header.status_code) == (
        401,
        401,
        200,
        200,
    )
    assert none.headers["www-authenticate"] == 'Bearer realm="model-serving"'
    assert none.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "a valid API key is required (Authorization: Bearer)",
    }
    assert "x-request-id" in none.headers
    for probe in ("/livez", "/readyz", "/ping", "/health", "/docs"):
        assert client.get(probe).status_code == 200, probe
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": "key-one"}).status_code == 200


def test_api_keys_can_come_from_a_mounted_file(
    served_model: ServedModel, tmp_path: pytest.TempPathFactory
) -> None:
    keys = tmp_path / "keys"  # type: ignore[operator]
    keys.write_text("from-file\n\n")
    app = create_app(Settings(api_keys_file=str(keys)), model=served_model)
    with TestClient(app) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        ok = client.post(
            "/invocations",
            json={"data": [VALID_ROW]},
            headers={"Authorization": "Bearer from-file"},
        )
        assert ok.status_code == 200
        assert client.post("/invocations", json={"data": [VALID_ROW]}).status_code == 401


def test_drift_stays_low_on_training_like_rows_and_rises_on_shifted_ones(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(drift_window_rows=1000, drift_min_rows=200, drift_sample_interval_ms=0)
    assert client.get("/drift").json()["features"]["age"] is None  # too few rows yet
    like_training = _records(600, seed=101)
    assert client.post("/invocations", json={"dataframe_records": like_training}).status_code == 200
    calm = client.get("/drift").json()
    assert calm["window_rows"] == 600
    assert max(calm["features"].values()) < 0.1, calm
    assert calm["score"] < 0.1

    shifted = [
        {
            **row,
            "income": float(row["income"]) * 0.2,
            "debt_to_income": 1.2,
            "employment_status": "unemployed",
        }
        for row in _records(1000, seed=202)
    ]
    assert client.post("/invocations", json={"dataframe_records": shifted}).status_code == 200
    drifted = client.get("/drift").json()
    assert drifted["features"]["income"] > 0.5
    assert drifted["features"]["debt_to_income"] > 0.5
    assert drifted["features"]["employment_status"] > 0.5
    assert drifted["features"]["age"] < 0.1
    assert drifted["score"] > 0.2
    client.get("/metrics")
    metrics = client.get("/metrics").text
    assert 'model_feature_drift_psi{feature="income"}' in metrics
