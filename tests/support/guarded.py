"""Models of other kinds than the demo, registered with business rules (app.guardrails)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from sklearn.linear_model import LogisticRegression

from registry_scripts._registration import register_model_version
from registry_scripts.guardrails import main as guardrails_command

APPLICANTS = pd.DataFrame(
    {
        "age": np.array([25, 40, 61, 33, 52, 19], dtype="int64"),
        "amount": [500.0, 2500.0, 900.0, 1200.0, 300.0, 4000.0],
        "channel": ["web", "branch", "web", "phone", "branch", "web"],
    }
)


class AmountScore(PythonModel):
    """Scores amount / 1000 (above 1 for amounts above 1000) and decides on the score."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        score = model_input["amount"].to_numpy(dtype=float) / 1000
        decision = np.where(score < 0.5, "approve", "review")
        return pd.DataFrame({"score": score, "decision": decision})


def log_sklearn_model(name: str) -> str:
    """A plain scikit-learn classifier on two numeric columns; its answer is a list."""
    features = APPLICANTS[["age", "amount"]]
    classifier = LogisticRegression().fit(features, [0, 1, 0, 1, 0, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            classifier,
            name=name,
            signature=infer_signature(features, classifier.predict(features)),
            pip_requirements=["mlflow", "scikit-learn"],
        )
    return str(info.model_uri)


def log_frame_model(name: str) -> str:
    """A PythonModel answering a DataFrame with a `score` and a `decision` per row."""
    frame = APPLICANTS[["age", "amount", "channel"]]
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=AmountScore(),
            signature=infer_signature(frame, AmountScore().predict(None, frame)),  # type: ignore[arg-type]
            pip_requirements=["mlflow"],
        )
    return str(info.model_uri)


def register_with_rules(name: str, model_uri: str, rules: str, tmp_path: Path) -> str:
    """A new version of `name` with `rules` attached through the registry command."""
    version = str(register_model_version(MlflowClient(), model_uri, name).version)
    rules_file = tmp_path / f"{name}-{version}.yaml"
    rules_file.write_text(rules)
    code = guardrails_command(
        ["attach", "--name", name, "--version", version, "--rules", str(rules_file)]
    )
    assert code == 0
    return version
