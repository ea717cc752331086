"""Same model, same body: our /invocations answers what MLflow's own scoring server answers.

MLflow's server is driven in-process through its own app factory
(`mlflow.pyfunc.scoring_server.init`), loaded from the same registry version.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc import scoring_server
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from app.runtime.model import load_served_model
from registry_scripts.demo_data import LABEL, make_credit_dataset
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo

ROWS = [VALID_ROW, RISKY_ROW, {**VALID_ROW, "age": 61, "home_ownership": "own"}]
COLUMNS = list(VALID_ROW)
BODIES: dict[str, tuple[str, bytes | dict[str, object]]] = {
    "dataframe_records": ("json", {"dataframe_records": ROWS}),
    "dataframe_split": (
        "json",
        {"dataframe_split": {"columns": COLUMNS, "data": [list(r.values()) for r in ROWS]}},
    ),
    "instances": ("json", {"instances": ROWS}),
    "inputs": ("json", {"inputs": ROWS}),
    "csv": ("csv", pd.DataFrame(ROWS).to_csv(index=False).encode()),
}


@pytest.fixture(scope="module")
def sklearn_model_uri(registry: RegisteredDemo) -> str:
    """A plain scikit-learn pipeline (no wrapper), logged with MLflow's sklearn flavor."""
    data = make_credit_dataset(n_rows=800, seed=3)
    features = data.drop(columns=[LABEL])
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            OneHotEncoder(handle_unknown="ignore"),
                            ["employment_status", "home_ownership"],
                        )
                    ],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    ).fit(features, data[LABEL])
    with mlflow.start_run(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(
            pipeline,
            name="plain",
            input_example=features.head(2),
            pyfunc_predict_fn="predict_proba",
            # Named, so MLflow does not start a process to infer them (the fast tier starts none).
            pip_requirements=["scikit-learn"],
        )
    return str(info.model_uri)


def _post(client: TestClient, kind: str, body: bytes | Mapping[str, object]) -> object:
    if kind == "csv":
        assert isinstance(body, bytes)
        response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    else:
        response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_plain_sklearn_model_predictions_equal_mlflows(
    make_client: Callable[..., TestClient], sklearn_model_uri: str, body: tuple[str, object]
) -> None:
    ours = make_client(load_served_model(sklearn_model_uri))
    theirs = TestClient(scoring_server.init(mlflow.pyfunc.load_model(sklearn_model_uri)))
    kind, payload = body
    assert _post(ours, kind, payload) == _post(theirs, kind, payload)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_wrapped_demo_model_predictions_equal_mlflows(
    client: TestClient, registry: RegisteredDemo, body: tuple[str, object]
) -> None:
    """MLflow's server loads the same version with the same identity config we pass."""
    uri = f"models:/{registry.name}/{registry.version}"
    theirs_model = mlflow.pyfunc.load_model(
        uri, model_config={"model_name": registry.name, "model_version": registry.version}
    )
    theirs = TestClient(scoring_server.init(theirs_model))
    kind, payload = body
    assert _post(client, kind, payload) == _post(theirs, kind, payload)  # type: ignore[arg-type]


def test_params_reach_the_model_as_in_mlflow(client: TestClient, registry: RegisteredDemo) -> None:
    uri = f"models:/{registry.name}/{registry.version}"
    theirs = TestClient(
        scoring_server.init(
            mlflow.pyfunc.load_model(
                uri, model_config={"model_name": registry.name, "model_version": registry.version}
            )
        )
    )
    body = {"dataframe_records": ROWS, "params": {"low_threshold": 0.05, "high_threshold": 0.2}}
    assert _post(client, "json", body) == _post(theirs, "json", body)


def test_numpy_output_is_serialised_like_mlflow(
    make_client: Callable[..., TestClient], sklearn_model_uri: str
) -> None:
    """predict_proba returns an ndarray: both servers answer nested lists of floats."""
    ours = make_client(load_served_model(sklearn_model_uri))
    predictions = _post(ours, "json", {"dataframe_records": ROWS})
    assert isinstance(predictions, dict)
    assert np.asarray(predictions["predictions"]).shape == (len(ROWS), 2)
