"""Models other than the demo for the batch tests, registered in the test registry.

`Labeller` answers a DataFrame with a text column naming its version's tag, so a row
scored with another version shows it; `sklearn_classifier` answers an array of classes.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from registry_scripts._registration import register_model_version

LABELLER_INPUT = pd.DataFrame({"amount": [12.5, 3.0], "count": [2, 5], "kind": ["a", "b"]})


class Labeller(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        config = context.model_config or {}
        self.tag = str(config.get("tag", "none"))
        self.seconds = float(config.get("sleep_seconds", 0.0))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        if self.seconds:
            time.sleep(self.seconds)  # a slow chunk, for the test that kills a run
        return pd.DataFrame(
            {
                "tag": [self.tag] * len(model_input),
                "total": model_input["amount"] * model_input["count"],
                "kind": model_input["kind"].str.upper(),
                "many": model_input["count"] > 2,
            }
        )


def register_labeller(name: str, tag: str, sleep_seconds: float = 0.0) -> str:
    """A new version of `name` answering `tag`; its version number."""
    output = pd.DataFrame(
        {"tag": [tag] * 2, "total": [25.0, 15.0], "kind": ["A", "B"], "many": [False, True]}
    )
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Labeller(),
            signature=infer_signature(LABELLER_INPUT, output),
            input_example=LABELLER_INPUT,
            model_config={"tag": tag, "sleep_seconds": sleep_seconds},
            metadata={"serving": {"rows_are_independent": True}},
            pip_requirements=["mlflow"],
        )
    client = mlflow.MlflowClient()
    return str(register_model_version(client, info.model_uri, name, run_id=run.info.run_id).version)


def iris_frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    iris = load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    return frame, iris.target.to_numpy()


def register_sklearn_classifier(name: str) -> str:
    frame, target = iris_frame()
    model = LogisticRegression(max_iter=500).fit(frame, target)
    with mlflow.start_run() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict(frame)),
            input_example=frame.head(2),
            serialization_format="cloudpickle",
            pip_requirements=["mlflow", "scikit-learn"],
        )
    client = mlflow.MlflowClient()
    return str(register_model_version(client, info.model_uri, name, run_id=run.info.run_id).version)
