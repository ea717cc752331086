"""A registry holding a stable version of the demo model and three canaries of it.

Run as `python -m tests.ops.canary_models DIR` from the project root: logging models sets
MLflow's process-wide tracking URI, so it runs in its own process. It prints the tracking URI
and the version number of each role as one JSON line.

  stable   the demo model (scikit-learn preprocessing + XGBoost, the product's wrapper)
  good     the same pipeline retrained on fresh data with another seed: a sound new version
  failing  answers 500 to about half the requests: its predict raises when the first
           applicant is aged 45 or more
  skewed   the stable's estimator with mis-set risk thresholds: the same scores, but nearly
           every applicant comes out 'high' risk, answered fast and with 200
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

ROLES = ("stable", "good", "failing", "skewed")
_FAILING_AGE = 45


class FailingModel(PythonModel):
    """Raises when the first applicant is 45 or older; its input example (35) passes the
    warm-up, so the server starts and reports ready like any other."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        if model_input["age"].iloc[0] >= _FAILING_AGE:
            raise RuntimeError("the failing canary fails, as it was built to")
        return pd.DataFrame({"score": [0.2] * len(model_input), "risk_level": "low"})


def make_registry(root: Path) -> dict[str, str]:
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    import mlflow
    from sklearn.model_selection import train_test_split

    from model_wrapper.packaging import log_scoring_model
    from model_wrapper.rules import RiskThresholds
    from registry_scripts._registration import register_model_version
    from registry_scripts.demo_data import LABEL, make_credit_dataset
    from registry_scripts.train import EXPERIMENT, MODEL_NAME, build_pipeline
    from tests.conftest import VALID_ROW

    client = mlflow.MlflowClient()
    client.create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
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

    stable, stable_rows = fit(seed=1)
    good, good_rows = fit(seed=2)
    versions = {
        "stable": register(lambda: log_scoring_model(stable, stable_rows, model_name=MODEL_NAME)),
        "good": register(lambda: log_scoring_model(good, good_rows, model_name=MODEL_NAME)),
        "failing": register(
            lambda: mlflow.pyfunc.log_model(
                name="model",
                python_model=FailingModel(),
                input_example=pd.DataFrame([VALID_ROW]),
                metadata={"serving": {"count_predictions_by": "risk_level"}},
            )
        ),
        "skewed": register(
            lambda: log_scoring_model(
                stable,
                stable_rows,
                model_name=MODEL_NAME,
                thresholds=RiskThresholds(low=0.01, high=0.02),
            )
        ),
    }
    return {"tracking_uri": tracking_uri, **versions}


if __name__ == "__main__":
    print(json.dumps(make_registry(Path(sys.argv[1]).resolve())))
