"""The registry versions the drills serve, logged into a running `mlflow server`.

Run as `python -m drills.models TRACKING_URL FAULTS_DIR [--canaries]` from the project root
(logging a model sets MLflow's process-wide tracking URI, so it runs in its own process). It
prints one JSON line: the registered model's name and the version of each role.

  faulty     a plain PythonModel over the demo's applicants whose predict can be made slow
             (a file `latency` in FAULTS_DIR holding seconds) or stuck (an applicant whose
             loan_amount is STUCK_LOAN_AMOUNT blocks predict for STUCK_SECONDS); otherwise
             it answers a score computed from the inputs, the same every time
With --canaries, the demo versions of tests/ops/canary_models.py too (stable, failing,
skewed, ...), logged through the same server.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

STUCK_LOAN_AMOUNT = 777_777.0
STUCK_SECONDS = 600.0  # longer than any drill waits; the process is stopped after it
LATENCY_FILE = "latency"


class FaultyModel(PythonModel):
    """Answers from the inputs alone, unless a fault is switched on (module docstring)."""

    def __init__(self, faults_dir: str) -> None:
        self._latency_path = Path(faults_dir) / LATENCY_FILE

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        if (model_input["loan_amount"] == STUCK_LOAN_AMOUNT).any():
            time.sleep(STUCK_SECONDS)
        with suppress(FileNotFoundError, ValueError):  # no file, no latency
            time.sleep(float(self._latency_path.read_text()))
        score = (model_input["debt_to_income"].astype(float).clip(0, 1) * 0.9).round(6)
        return pd.DataFrame(
            {"score": score, "risk_level": ["high" if s > 0.5 else "low" for s in score]}
        )


def register_versions(tracking_url: str, faults_dir: Path, canaries: bool) -> dict[str, str]:
    os.environ["MLFLOW_TRACKING_URI"] = tracking_url
    import mlflow

    from registry_scripts._registration import register_model_version
    from registry_scripts.train import EXPERIMENT, MODEL_NAME
    from tests.support.demo import VALID_ROW

    versions: dict[str, str] = {}
    if canaries:
        from tests.ops.canary_models import register_roles

        versions.update(register_roles(None))
    else:
        mlflow.set_experiment(EXPERIMENT)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FaultyModel(str(faults_dir)),
            input_example=pd.DataFrame([VALID_ROW]),
            metadata={"serving": {"count_predictions_by": "risk_level"}},
            pip_requirements=["pandas"],
        )
    version = register_model_version(client, info.model_uri, MODEL_NAME, run_id=run.info.run_id)
    versions["faulty"] = str(version.version)
    return {"name": MODEL_NAME, **versions}


if __name__ == "__main__":
    print(
        json.dumps(
            register_versions(sys.argv[1], Path(sys.argv[2]), canaries="--canaries" in sys.argv)
        )
    )
