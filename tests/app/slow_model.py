"""A real pyfunc model that takes its time: for drain, timeout and load-shedding tests, and
for a worker whose first predicts (its warm-up's) are slow and the later ones quick."""

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
        config = context.model_config or {}
        self.seconds = float(config.get("sleep_seconds", 1.0))
        slow = config.get("slow_predicts")  # this many predicts per process sleep; unset: all
        self.slow_predicts = None if slow is None else int(slow)
        self.predicts = 0

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        self.predicts += 1
        if self.slow_predicts is None or self.predicts <= self.slow_predicts:
            time.sleep(self.seconds)
        return pd.DataFrame({"score": [0.5] * len(model_input)})


def save_slow_model(
    path: Path, seconds: float, slow_predicts: int | None = None, input_example: Any = None
) -> Path:
    """Each predict sleeps `seconds`; with `slow_predicts`, only the first that many in each
    process (a worker's warm-up is its first). The input example (default: one demo row)
    gives the signature."""
    config: dict[str, Any] = {"sleep_seconds": seconds}
    if slow_predicts is not None:
        config["slow_predicts"] = slow_predicts
    mlflow.pyfunc.save_model(
        path,
        python_model=SlowModel(),
        input_example=pd.DataFrame([VALID_ROW]) if input_example is None else input_example,
        model_config=config,
        # Each row is scored alone, so concurrent requests may share one (slow) predict.
        metadata={"serving": {"rows_are_independent": True}},
        # Named, so MLflow does not start a process to infer them (the fast tier starts none).
        pip_requirements=["mlflow"],
    )
    return path
