"""Probes, /version and /docs on the real demo model."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.pyfunc.model import PythonModel

from app.http.openapi import synthetic_records
from app.http.probes import build_probe_router
from app.main import create_app
from app.readiness import Readiness
from app.runtime.model import ServedModel, load_served_model
from tests.support.demo import VALID_ROW, RegisteredDemo
from tests.support.probes import assert_not_ready


@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_mlflow_liveness_routes_answer_200(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.text == "\n"


def test_livez_and_readyz_answer_once_warmed_up(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_with_error_body_until_ready() -> None:
    readiness = Readiness()
    app = FastAPI()
    app.include_router(build_probe_router(readiness))
    with TestClient(app) as probe_client:
        assert_not_ready(probe_client.get("/readyz"), "warming up")
        assert probe_client.get("/livez").status_code == 200
        readiness.ready = True
        assert probe_client.get("/readyz").status_code == 200


class _FailingModel(PythonModel):
    def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> None:
        raise RuntimeError("broken on purpose")


def test_a_worker_whose_warm_up_fails_stays_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "failing"
    mlflow.pyfunc.save_model(
        path,
        python_model=_FailingModel(),
        input_example=pd.DataFrame([VALID_ROW]),
        # Named, so MLflow does not start a process to infer them (the fast tier starts none).
        pip_requirements=["mlflow"],
    )
    with TestClient(create_app(model=load_served_model(str(path)))) as app_client:
        deadline = time.monotonic() + 10
        response = app_client.get("/readyz")
        while "failed" not in response.text and time.monotonic() < deadline:
            time.sleep(0.05)
            response = app_client.get("/readyz")
        assert response.status_code == 503
        assert "warm-up request failed" in response.json()["message"]
        broken = app_client.post("/invocations", json={"dataframe_records": [VALID_ROW]})
        # Its predict failed when it was logged, so it has no signature: nothing checked the
        # input, and the failure is answered as MLflow answers it, a 400.
        assert broken.status_code == 400
        assert broken.json()["error_code"] == "BAD_REQUEST"
        assert "broken on purpose" not in broken.text


def test_version_describes_the_concrete_registry_version(
    client: TestClient, registry: RegisteredDemo
) -> None:
    version = client.get("/version").json()
    assert version["name"] == registry.name
    assert version["version"] == registry.version
    assert version["run_id"] == registry.run_id
    assert version["requested_uri"] == "models:/credit-risk-scoring/Production"
    assert version["resolved_uri"] == f"models:/credit-risk-scoring/{registry.version}"
    assert version["model_id"].startswith("m-")
    assert "age" in version["signature"]["inputs"]
    assert set(version["packages"]) >= {"python", "mlflow", "scikit-learn", "pandas"}
    assert version["load_seconds"] > 0


def test_docs_show_the_model_columns_types_and_example(
    client: TestClient, served_model: ServedModel
) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    record = body["application/json"]["schema"]["properties"]["dataframe_records"]["items"]
    assert record["properties"]["age"] == {"type": "integer", "format": "int64"}
    assert record["properties"]["employment_status"] == {"type": "string"}
    assert set(record["required"]) == set(VALID_ROW)
    example = body["application/json"]["examples"]["dataframe_records"]["value"]
    assert example == {"dataframe_records": [synthetic_records(served_model.input_schema)[0]]}
    assert client.post("/invocations", json=example).status_code == 200
    assert "text/csv" in body
    params = body["application/json"]["schema"]["properties"]["params"]["properties"]
    assert params["low_threshold"]["default"] == 0.3
    responses = spec["paths"]["/invocations"]["post"]["responses"]
    assert {"200", "400", "415", "422", "500", "503"} <= set(responses)


def test_docs_never_show_the_logged_training_rows(
    client: TestClient, served_model: ServedModel
) -> None:
    """The logged input example is training data; /openapi.json may be public."""
    logged = served_model.input_example()
    assert logged is not None
    document = client.get("/openapi.json").text
    for value in (*logged["income"], *logged["loan_amount"], *logged["debt_to_income"]):
        assert str(value) not in document
    body = client.get("/openapi.json").json()["paths"]["/invocations"]["post"]["requestBody"]
    assert body["content"]["text/csv"]["example"].splitlines()[1].startswith("1,1.5,string")
