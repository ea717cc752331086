"""A registry holding stable versions and canaries of two models: the demo and another.

Run as `python -m tests.ops.canary_models DIR` from the project root: logging models sets
MLflow's process-wide tracking URI, so it runs in its own process. It prints the tracking URI
and the version number of each role as one JSON line. Every role is a version of one
registered model, so that `model_info{version}` tells them apart in one Prometheus job.

The demo model's versions, all given the same applicants:
  stable        the demo model (scikit-learn preprocessing + XGBoost, the product's wrapper)
  good          the same pipeline retrained on fresh data with another seed: a sound version
  failing       answers 500 to about half the requests: its predict raises when the first
                applicant is aged 45 or more
  skewed        the stable's estimator with mis-set risk thresholds: the same scores, but
                nearly every applicant comes out 'high' risk, answered fast and with 200
  refusing      the stable's estimator with a signature that also requires a `channel`
                column, which a fifth of the clients do not send: 422 for those, the
                stable's answers for the rest
  slow          takes 0.7 s per predict: its pods admit one request at a time and shed the
                rest with fast 503s
  idle          the good version again, served but sent no traffic
A model that is not the demo, given the same flowers:
  other-stable  a classifier of three species from four measurements, counting its `label`
                output field (not `risk_level`)
  other-good    the same classifier retrained on fresh data: a sound version
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

ROLES = (
    "stable",
    "good",
    "failing",
    "skewed",
    "refusing",
    "slow",
    "idle",
    "other-stable",
    "other-good",
)
_FAILING_AGE = 45
SLOW_PREDICT_SECONDS = 0.7
# The column the refusing canary requires, and the value the clients that send it give.
CHANNEL_COLUMN = "channel"
CHANNEL_VALUE = "web"
SPECIES = ("setosa", "versicolor", "virginica")
MEASUREMENTS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class FailingModel(PythonModel):
    """Raises when the first applicant is 45 or older; its input example (35) passes the
    warm-up, so the server starts and reports ready like any other."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        if model_input["age"].iloc[0] >= _FAILING_AGE:
            raise RuntimeError("the failing canary fails, as it was built to")
        return pd.DataFrame({"score": [0.2] * len(model_input), "risk_level": "low"})


class SlowModel(PythonModel):
    """Answers the demo's fields after SLOW_PREDICT_SECONDS per call."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        time.sleep(SLOW_PREDICT_SECONDS)
        return pd.DataFrame({"score": [0.2] * len(model_input), "risk_level": "low"})


class SpeciesModel(PythonModel):
    """A classifier that is not the demo: its output field `label` is what it counts."""

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        probabilities = self._estimator.predict_proba(model_input[list(MEASUREMENTS)])
        return pd.DataFrame(
            {
                "label": [SPECIES[i] for i in probabilities.argmax(axis=1)],
                "probability": probabilities.max(axis=1),
            }
        )


def make_flowers(n_rows: int, seed: int) -> pd.DataFrame:
    """Three species, well apart: a retrained classifier agrees with the first on nearly all."""
    generator = np.random.default_rng(seed)
    species = generator.integers(0, len(SPECIES), n_rows)
    centres = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    values = centres[species] + generator.normal(0, 0.3, (n_rows, len(MEASUREMENTS)))
    frame = pd.DataFrame(values, columns=list(MEASUREMENTS))
    frame["species"] = species
    return frame


def make_registry(root: Path) -> dict[str, str]:
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    return {"tracking_uri": tracking_uri, **register_roles(str(root / "artifacts"))}


def register_roles(artifact_location: str | None) -> dict[str, str]:
    """Every role as a version in the registry MLFLOW_TRACKING_URI names, artifacts under
    `artifact_location` (None: the tracking server's default, proxied artifacts)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from model_wrapper.packaging import log_scoring_model
    from model_wrapper.rules import RiskThresholds
    from registry_scripts._registration import register_model_version
    from registry_scripts.demo_data import LABEL, make_credit_dataset
    from registry_scripts.train import EXPERIMENT, MODEL_NAME, build_pipeline
    from tests.support.demo import VALID_ROW

    client = mlflow.MlflowClient()
    client.create_experiment(EXPERIMENT, artifact_location=artifact_location)
    mlflow.set_experiment(EXPERIMENT)

    def fit(seed: int) -> tuple[Any, pd.DataFrame]:
        data = make_credit_dataset(n_rows=1500, seed=seed)
        train_x, _, train_y, _ = train_test_split(
            data.drop(columns=[LABEL]), data[LABEL], test_size=0.25, random_state=seed
        )
        return build_pipeline(30, seed).fit(train_x, train_y), train_x

    def register(log: Any) -> str:
        with mlflow.start_run() as run:
            info = log()
        version = register_model_version(client, info.model_uri, MODEL_NAME, run_id=run.info.run_id)
        return str(version.version)

    def fit_species(seed: int) -> tuple[Any, pd.DataFrame]:
        flowers = make_flowers(600, seed)
        features = flowers[list(MEASUREMENTS)]
        return LogisticRegression(max_iter=500).fit(features, flowers["species"]), features

    def log_species(seed: int) -> Any:
        estimator, features = fit_species(seed)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=SpeciesModel(estimator),
            input_example=features.head(3),
            metadata={"serving": {"count_predictions_by": "label"}},
        )

    def log_applicant_model(model: PythonModel) -> Any:
        """A PythonModel taking the demo's applicants and counting its risk_level."""
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            input_example=pd.DataFrame([VALID_ROW]),
            metadata={"serving": {"count_predictions_by": "risk_level"}},
        )

    stable, stable_rows = fit(seed=1)
    good, good_rows = fit(seed=2)
    return {
        "stable": register(lambda: log_scoring_model(stable, stable_rows, model_name=MODEL_NAME)),
        "good": register(lambda: log_scoring_model(good, good_rows, model_name=MODEL_NAME)),
        "failing": register(lambda: log_applicant_model(FailingModel())),
        "skewed": register(
            lambda: log_scoring_model(
                stable,
                stable_rows,
                model_name=MODEL_NAME,
                thresholds=RiskThresholds(low=0.01, high=0.02),
            )
        ),
        "refusing": register(
            lambda: log_scoring_model(
                stable, stable_rows.assign(**{CHANNEL_COLUMN: CHANNEL_VALUE}), model_name=MODEL_NAME
            )
        ),
        "slow": register(lambda: log_applicant_model(SlowModel())),
        "idle": register(lambda: log_scoring_model(good, good_rows, model_name=MODEL_NAME)),
        "other-stable": register(lambda: log_species(seed=1)),
        "other-good": register(lambda: log_species(seed=2)),
    }


if __name__ == "__main__":
    print(json.dumps(make_registry(Path(sys.argv[1]).resolve())))
