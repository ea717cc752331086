"""A real pyfunc model that takes its time: for drain, timeout and load-shedding tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from tests.support.demo import VALID_ROW


class SlowModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.seconds = float((context.model_config or {}).get("sleep_seconds", 1.0))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        time.sleep(self.seconds)
        return pd.DataFrame({"score": [0.5] * len(model_input)})


def save_slow_model(path: Path, seconds: float) -> Path:
    mlflow.pyfunc.save_model(
        path,
        python_model=SlowModel(),
        input_example=pd.DataFrame([VALID_ROW]),
        model_config={"sleep_seconds": seconds},
        # Each row is scored alone, so concurrent requests may share one (slow) predict.
        metadata={"serving": {"rows_are_independent": True}},
        # Named, so MLflow does not start a process to infer them (the fast tier starts none).
        pip_requirements=["mlflow"],
    )
    return path
