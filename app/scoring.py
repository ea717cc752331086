"""The data plane: one scoring request from body bytes to response bytes.

Routes hand it the body and content type; it parses (MLflow's protocol), validates against
the signature, predicts, records model metrics and encodes. It knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from app.errors import PredictionFailedError, SchemaMismatchError
from app.metrics import ServingMetrics
from app.model import ServedModel
from app.protocol import encode_predictions, parse_request
from app.validation import check_input, check_params

logger = logging.getLogger(__name__)

# MLflow's own enforcement messages quote the input; ours (app.validation) run first and
# name the column, so when MLflow still objects the answer is generic.
_MLFLOW_ENFORCEMENT_PREFIXES = ("Failed to enforce schema", "Failed to validate", "Incompatible")
_CLIENT_ERROR_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}


@dataclass(frozen=True)
class ScoringResult:
    body: bytes
    rows: int


class Scorer:
    def __init__(self, model: ServedModel, metrics: ServingMetrics) -> None:
        self.model = model
        self.metrics = metrics

    def score(self, body: bytes, content_type: str | None) -> ScoringResult:
        request = parse_request(body, content_type, self.model.input_schema)
        check_input(request.data, self.model.input_schema)
        check_params(request.params, self.model.params_schema)
        predictions = self.predict(request.data, request.params)
        self.metrics.rows.observe(request.rows)
        self._count_predictions(predictions, request.rows)
        return ScoringResult(encode_predictions(predictions), request.rows)

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        started = time.perf_counter()
        try:
            return self.model.predict(data, params)
        except MlflowException as error:
            if error.error_code not in _CLIENT_ERROR_CODES:
                logger.exception("the model failed with %s", error.error_code)
                raise PredictionFailedError(_FAILED) from error
            logger.info("MLflow rejected the input: %s", error.error_code)
            message = error.message
            if message.startswith(_MLFLOW_ENFORCEMENT_PREFIXES):
                message = "the input does not match the model's signature (see GET /version)"
            raise SchemaMismatchError(message) from None
        except Exception as error:
            logger.exception("the model failed with %s", type(error).__name__)
            raise PredictionFailedError(_FAILED) from error
        finally:
            self.metrics.predict_seconds.observe(time.perf_counter() - started)

    def _count_predictions(self, predictions: Any, rows: int) -> None:
        if isinstance(predictions, pd.DataFrame) and "risk_level" in predictions.columns:
            for level, count in predictions["risk_level"].value_counts().items():
                self.metrics.predictions.labels(str(level)).inc(int(count))
        else:
            self.metrics.predictions.labels("none").inc(rows)


_FAILED = "the model failed to score this request; the server log has the detail"
