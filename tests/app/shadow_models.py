"""A registry holding a served model and candidates to shadow it, none of them the demo.

Run as `python -m tests.app.shadow_models DIR` from the project root: logging models sets
MLflow's process-wide tracking URI, so it runs in its own process. It prints the tracking
URI, the registered name and the version of each role as one JSON line. Every role takes
the same rows (an integer `segment`, 0 to 9, and a float `amount`) and answers a DataFrame
of a text `label` and a numeric `score`:
  primary    label "approve" when amount > 50, else "refer"; score amount / 100
  flipping   the primary's answers, but for segments FLIPPED_SEGMENTS the other label and
             a score FLIPPED_SCORE_SHIFT higher: rows of those segments disagree
  failing    raises on every call
  slow       the primary's answers after SLOW_PREDICT_SECONDS; the only one that does not
             declare its rows independent, so the shadow predicts each request alone
The demo's canaries (tests/ops/canary_models.py) fail and sleep on the demo's applicants;
these take a model that is not the demo.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

NAME = "shadow-candidates"
ROLES = ("primary", "flipping", "failing", "slow")
SEGMENTS = 10
FLIPPED_SEGMENTS = frozenset({0, 1})  # a fifth of the segments
FLIPPED_SCORE_SHIFT = 0.25
SLOW_PREDICT_SECONDS = 0.5


def primary_answers(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["approve" if amount > 50 else "refer" for amount in rows["amount"]],
            "score": rows["amount"].to_numpy() / 100,
        }
    )


class PrimaryModel(PythonModel):
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        return primary_answers(model_input)


class FlippingModel(PythonModel):
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        answers = primary_answers(model_input)
        flipped = model_input["segment"].isin(FLIPPED_SEGMENTS).to_numpy()
        answers.loc[flipped, "label"] = answers.loc[flipped, "label"].map(
            {"approve": "refer", "refer": "approve"}
        )
        answers.loc[flipped, "score"] += FLIPPED_SCORE_SHIFT
        return answers


class FailingModel(PythonModel):
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        raise RuntimeError("the failing candidate fails, as it was built to")


class SlowModel(PythonModel):
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        time.sleep(SLOW_PREDICT_SECONDS)
        return primary_answers(model_input)


def rows_for(segments: range, amount_of: int = 0) -> list[dict[str, Any]]:
    """One row per segment; the amounts spread over both labels."""
    return [
        {"segment": segment, "amount": float((segment * 37 + amount_of * 11) % 100)}
        for segment in segments
    ]


def make_registry(root: Path) -> dict[str, str]:
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    import mlflow

    from registry_scripts._registration import register_model_version

    client = mlflow.MlflowClient()
    experiment = client.create_experiment("shadow", artifact_location=str(root / "artifacts"))
    example = pd.DataFrame(rows_for(range(3)))
    models = {
        "primary": PrimaryModel(),
        "flipping": FlippingModel(),
        "failing": FailingModel(),
        "slow": SlowModel(),
    }
    made = {"tracking_uri": tracking_uri, "name": NAME}
    for role in ROLES:
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=models[role],
                input_example=example,
                metadata={"serving": {"rows_are_independent": role != "slow"}},
            )
        version = register_model_version(client, info.model_uri, NAME, run_id=run.info.run_id)
        made[role] = str(version.version)
    return made


if __name__ == "__main__":
    print(json.dumps(make_registry(Path(sys.argv[1]).resolve())))
