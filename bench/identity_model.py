"""The trivial model of the overhead bench, logged as code: `predict` returns its input.

Its own cost is next to nothing, so what a server adds around it is what a request costs.
This file is what MLflow stores and executes at load time ("models from code"): it imports
MLflow only, never the bench.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext


class IdentityModel(PythonModel):
    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        return model_input


mlflow.models.set_model(IdentityModel())
