"""What a model declares decides how it is served; without MLflow's and pandas' internals
the server answers the same, only slower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc.model import PythonModel

from app import mlflow_compat
from app.main import create_app
from app.mlflow_compat import Compatibility
from app.observability.metrics import ServingMetrics
from app.runtime.model import ServedModel, ServingHints, load_served_model
from app.runtime.scoring import Scorer
from app.settings import Settings
from registry_scripts.demo_data import LABEL, make_credit_dataset
from tests.support.demo import PRODUCTION_URI, VALID_ROW


class _Doubles(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.DataFrame({"twice": model_input["x"] * 2})


@pytest.fixture(scope="module")
def undeclared_model(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    path = tmp_path_factory.mktemp("undeclared") / "model"
    mlflow.pyfunc.save_model(
        path,
        python_model=_Doubles(),
        input_example=pd.DataFrame({"x": [1.0]}),
        # Named, so MLflow does not start a process to infer them (the fast tier starts none).
        pip_requirements=["mlflow"],
    )
    return load_served_model(str(path))


def test_the_demo_model_declares_independent_rows_and_its_counted_field(
    served_model: ServedModel,
) -> None:
    assert served_model.description.serving == ServingHints(
        rows_are_independent=True, count_predictions_by="risk_level"
    )
    assert served_model.description.as_dict()["serving"]["rows_are_independent"] is True


@pytest.mark.parametrize(
    ("setting", "demo", "undeclared"),
    [(None, True, False), (True, True, True), (False, False, False)],
    ids=["declared-by-the-model", "operator-on", "operator-off"],
)
def test_batching_follows_the_model_unless_the_operator_says(
    served_model: ServedModel,
    undeclared_model: ServedModel,
    setting: bool | None,
    demo: bool,
    undeclared: bool,
) -> None:
    settings = Settings(batching=setting)
    assert Scorer(served_model, ServingMetrics(), settings).batching is demo
    assert Scorer(undeclared_model, ServingMetrics(), settings).batching is undeclared


def test_a_malformed_serving_declaration_stops_the_load() -> None:
    with pytest.raises(Exception, match="not a mapping"):
        ServingHints.from_metadata({"serving": ["rows_are_independent"]})


def test_a_data_body_that_is_not_records_names_dataframe_split(client: TestClient) -> None:
    body = {"data": {"columns": list(VALID_ROW), "data": [list(VALID_ROW.values())]}}
    response = client.post("/invocations", json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "'dataframe_split'" in response.json()["message"]


def test_predictions_are_counted_by_the_declared_field(client: TestClient) -> None:
    assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'model_predictions_total{field="risk_level",value="low"}' in metrics


def _bodies() -> list[dict[str, Any]]:
    rows = make_credit_dataset(n_rows=40, seed=21).drop(columns=[LABEL])
    records = rows.to_dict(orient="records")
    return [
        {"dataframe_records": records},
        {"dataframe_split": rows.to_dict(orient="split", index=False)},
        {"instances": records[:5]},
        {"dataframe_records": records[:1], "params": {"low_threshold": 0.1}},
    ]


def _answers(model: ServedModel, **settings: Any) -> list[Any]:
    with TestClient(create_app(Settings(**settings), model=model)) as app_client:
        return [app_client.post("/invocations", json=body).json() for body in _bodies()]


@pytest.mark.parametrize("batching", [True, False])
def test_without_private_names_the_public_path_gives_identical_answers(
    monkeypatch: pytest.MonkeyPatch, registry: object, batching: bool
) -> None:
    fast = _answers(load_served_model(PRODUCTION_URI), batching=batching)
    monkeypatch.setattr(mlflow_compat, "COMPATIBILITY", Compatibility(False, False))
    public_model = load_served_model(PRODUCTION_URI)
    assert public_model._direct_predict is None
    public = _answers(public_model, batching=batching)
    assert fast == public
    assert all("predictions" in answer for answer in fast)


def test_frames_and_records_match_pandas_public_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.protocol.frames import frame_from_arrays, frame_records

    frame = make_credit_dataset(n_rows=7, seed=2).drop(columns=[LABEL])
    columns: dict[str, Callable[..., Any] | Any] = {str(n): frame[n].to_numpy() for n in frame}
    fast_frame, fast_records = frame_from_arrays(columns), frame_records(frame)
    monkeypatch.setattr(mlflow_compat, "COMPATIBILITY", Compatibility(False, False))
    pd.testing.assert_frame_equal(frame_from_arrays(columns), fast_frame)
    assert frame_records(frame) == fast_records == frame.to_dict(orient="records")


def test_unset_model_uri_is_refused_by_the_factory() -> None:
    with pytest.raises(SystemExit) as stopped:
        create_app(Settings(model_uri=None))
    assert stopped.value.code == 3
