"""The MLflow PythonModel that turns a classifier's probabilities into business output."""

from __future__ import annotations

from typing import Any

import joblib
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from model_wrapper.rules import InvalidThresholdsError, RiskThresholds, score_rows

ESTIMATOR_ARTIFACT = "estimator"
OUTPUT_COLUMNS = ("score", "risk_level", "decision", "model_name", "model_version")


class RiskScoringModel(PythonModel):
    """Wraps any fitted estimator with `predict_proba` (a scikit-learn pipeline, XGBoost, ...).

    The model config logged with the version holds the risk thresholds and the model name;
    the server adds the registry version it resolved. Request params may override the
    thresholds for one request.
    """

    def load_context(self, context: PythonModelContext) -> None:
        self._estimator = joblib.load(context.artifacts[ESTIMATOR_ARTIFACT])
        config = context.model_config or {}
        self._thresholds = RiskThresholds.from_mapping(config)
        self._model_name = str(config.get("model_name") or "")
        self._model_version = str(config.get("model_version") or "")

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        thresholds = self._thresholds_for(params or {})
        probabilities = self._estimator.predict_proba(model_input)[:, 1]
        rows = len(probabilities)
        return pd.DataFrame(
            {
                **score_rows(probabilities, thresholds),
                "model_name": [self._model_name] * rows,
                "model_version": [self._model_version] * rows,
            }
        )

    def _thresholds_for(self, params: dict[str, Any]) -> RiskThresholds:
        """Request params override the logged thresholds; bad values are the caller's fault.

        A null param is one not given (MLflow hands nulls over as None): the logged value.
        """
        low, high = params.get("low_threshold"), params.get("high_threshold")
        try:
            return RiskThresholds(
                low=float(self._thresholds.low if low is None else low),
                high=float(self._thresholds.high if high is None else high),
            )
        except InvalidThresholdsError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from error
        except (TypeError, ValueError):
            # Python's own words would name its internals: say what a threshold must be.
            raise MlflowException.invalid_parameter_value(
                "risk thresholds must be numbers between 0 and 1"
            ) from None
