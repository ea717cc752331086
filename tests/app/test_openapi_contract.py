"""The OpenAPI document and the server agree on POST /invocations: the content types it
reads and the error statuses (with their codes) it answers, each provoked for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import orjson
import pandas as pd
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from app.protocol.parsing import CSV, JSON, PARQUET, SUPPORTED_CONTENT_TYPES
from app.runtime.model import load_served_model
from tests.app.slow_model import save_slow_model
from tests.support.asgi import score_concurrently
from tests.support.demo import VALID_ROW

BODY = {"dataframe_records": [VALID_ROW]}
# Answered by the worker before the app sees the request: provoked through the real
# production command in tests/fuzz/test_hostile_production_resources.py.
ANSWERED_BEFORE_THE_APP = {"431"}


class FailingModel(PythonModel):
    """A model that raises on valid input with a negative income (its warm-up passes)."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        if (model_input["income"] < 0).any():
            raise RuntimeError("this model fails on negative incomes")
        return pd.DataFrame({"score": [0.5] * len(model_input)})


def _operation(client: TestClient) -> dict[str, Any]:
    document = client.get("/openapi.json").json()
    operation: dict[str, Any] = document["paths"]["/invocations"]["post"]
    return operation


def test_documented_content_types_are_the_ones_the_server_reads(client: TestClient) -> None:
    content = _operation(client)["requestBody"]["content"]
    assert list(content) == list(SUPPORTED_CONTENT_TYPES)
    frame = pd.DataFrame([VALID_ROW])
    bodies = {JSON: orjson.dumps(BODY), CSV: frame.to_csv(index=False).encode()}
    bodies[PARQUET] = frame.to_parquet()
    for media_type in content:
        answer = client.post(
            "/invocations", content=bodies[media_type], headers={"Content-Type": media_type}
        )
        assert answer.status_code == 200, (media_type, answer.text)
    refused = client.post("/invocations", content=b"x", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415


def test_every_documented_error_status_is_answered_and_none_other(
    client: TestClient, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    answered: dict[str, str] = {}

    def note(answer: Any) -> None:
        assert answer.status_code >= 400, answer.text
        answered[str(answer.status_code)] = answer.json()["error_code"]

    note(client.post("/invocations", content=b"{", headers={"Content-Type": JSON}))
    note(client.post("/invocations", content=b"x", headers={"Content-Type": "text/plain"}))
    note(client.post("/invocations", json={"dataframe_records": [{**VALID_ROW, "income": "x"}]}))
    note(make_client(api_keys="a-key").post("/invocations", json=BODY))
    note(make_client(max_body_bytes=1024).post("/invocations", json={"x": "y" * 2000}))

    slow = load_served_model(str(save_slow_model(tmp_path / "slow", 0.3)))
    note(make_client(slow, request_timeout_seconds=0.1).post("/invocations", json=BODY))
    busy = make_client(slow, max_concurrent_requests=1)
    note(next(a for a in score_concurrently(busy, [BODY, BODY]) if a.status_code != 200))

    example = pd.DataFrame([VALID_ROW])
    mlflow.pyfunc.save_model(
        tmp_path / "failing",
        python_model=FailingModel(),
        signature=infer_signature(example),
        input_example=example,
        # Named, so MLflow does not start a process to infer them (the fast tier starts none).
        pip_requirements=["mlflow"],
    )
    failing = load_served_model(str(tmp_path / "failing"))
    negative = {"dataframe_records": [{**VALID_ROW, "income": -1.0}]}
    note(make_client(failing).post("/invocations", json=negative))

    documented = {
        status: response["description"]
        for status, response in _operation(client)["responses"].items()
        if status != "200"
    }
    assert set(documented) == set(answered) | ANSWERED_BEFORE_THE_APP
    for status, error_code in answered.items():
        assert f"({error_code})" in documented[status], (status, documented[status])
