"""The wrapped demo model as MLflow logged it: loads through pyfunc, answers business output."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from app.runtime.model import ServedModel
from model_wrapper.packaging import MODEL_REQUIREMENTS
from model_wrapper.scoring_model import OUTPUT_COLUMNS
from tests.support import PROJECT_ROOT
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo


@pytest.fixture(scope="module")
def local_model_dir(registry: RegisteredDemo) -> Path:
    uri = f"models:/{registry.name}/{registry.version}"
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))


def test_predictions_carry_score_risk_level_decision_and_identity(
    served_model: ServedModel,
) -> None:
    output = served_model.predict(pd.DataFrame([VALID_ROW, RISKY_ROW]))
    assert list(output.columns) == list(OUTPUT_COLUMNS)
    assert output["score"].between(0, 1).all()
    assert output.loc[0, "score"] < output.loc[1, "score"]
    assert output.loc[1, "risk_level"] == "high"
    assert output.loc[1, "decision"] == "decline"
    assert set(output["model_name"]) == {"credit-risk-scoring"}
    assert set(output["model_version"]) == {served_model.description.version}


def test_request_params_override_the_logged_thresholds(served_model: ServedModel) -> None:
    frame = pd.DataFrame([VALID_ROW])
    score = float(served_model.predict(frame)["score"].iloc[0])
    everything_high = served_model.predict(
        frame, params={"low_threshold": score / 4, "high_threshold": score / 2}
    )
    assert everything_high["risk_level"].tolist() == ["high"]


def test_inverted_thresholds_in_params_are_an_invalid_parameter(served_model: ServedModel) -> None:
    with pytest.raises(MlflowException, match="0 <= low < high <= 1") as raised:
        served_model.predict(
            pd.DataFrame([VALID_ROW]), params={"low_threshold": 0.9, "high_threshold": 0.1}
        )
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"


def test_logged_model_has_signature_example_params_and_its_code(local_model_dir: Path) -> None:
    logged = Model.load(str(local_model_dir))
    assert logged.signature is not None
    assert logged.signature.inputs.input_names() == list(VALID_ROW)
    assert logged.signature.params is not None
    assert [p.name for p in logged.signature.params.params] == ["low_threshold", "high_threshold"]
    assert logged.load_input_example(str(local_model_dir)) is not None
    assert (local_model_dir / "code" / "model_wrapper" / "scoring_model.py").is_file()
    config = logged.flavors["python_function"]["config"]
    assert config["low_threshold"] == 0.3
    assert config["high_threshold"] == 0.7


def test_logged_requirements_match_the_serving_image_pins(local_model_dir: Path) -> None:
    """A server holding only requirements.txt has exactly what the model asks for."""
    logged = {
        line.split("==")[0]: line
        for line in (local_model_dir / "requirements.txt").read_text().split()
        if "==" in line
    }
    pinned = {
        line.split("==")[0].split("[")[0]: line
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for package in MODEL_REQUIREMENTS:
        assert logged[package] == pinned[package]
