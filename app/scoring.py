"""The data plane: one scoring request from body bytes to response bytes.

Routes hand it the body and content type; it parses (MLflow's protocol), validates against
the signature, hands tabular requests to the micro-batcher (others are predicted alone),
records model metrics and encodes. It knows nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.utils.proto_json_utils import _get_jsonable_obj
from starlette.concurrency import run_in_threadpool

from app.batching import MicroBatcher
from app.drift import DriftMonitor
from app.errors import PredictionFailedError, SchemaMismatchError
from app.frames import frame_records
from app.metrics import ServingMetrics
from app.model import ServedModel
from app.protocol import FrameBuilder, ScoringRequest, encode_predictions, parse_request
from app.settings import Settings
from app.validation import check_params

logger = logging.getLogger(__name__)

# MLflow's own enforcement messages quote the input; ours (app.validation) run first and
# name the column, so when MLflow still objects the answer is generic.
_MLFLOW_ENFORCEMENT_PREFIXES = ("Failed to enforce schema", "Failed to validate", "Incompatible")
_CLIENT_ERROR_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}
_FAILED = "the model failed to score this request; the server log has the detail"


class Scorer:
    def __init__(
        self,
        model: ServedModel,
        metrics: ServingMetrics,
        settings: Settings,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.drift = drift
        self.to_frame = FrameBuilder(model.input_schema)
        schema = model.params_schema
        self._declared_params = {spec.name for spec in schema.params} if schema else set()
        self.batcher = MicroBatcher(
            self.predict_jsonable,
            self.to_frame,
            enabled=settings.batching,
            max_batch_rows=settings.batch_max_rows,
            max_wait_seconds=settings.batch_max_wait_ms / 1000,
            inline_max_seconds=settings.inline_predict_max_ms / 1000,
            observe_batch=metrics.batch_rows.observe,
        )

    def parse(self, body: bytes, content_type: str | None) -> ScoringRequest:
        request = parse_request(body, content_type, self.model.input_schema)
        check_params(request.params, self.model.params_schema)
        # Params the model does not declare are dropped, as MLflow drops them, but here:
        # MLflow would log their names, which are the caller's text, verbatim.
        declared = self._declared_params
        params = {k: v for k, v in (request.params or {}).items() if k in declared}
        return dataclasses.replace(request, params=params or None)

    async def score(self, request: ScoringRequest) -> bytes:
        if request.batchable:
            outputs = await self.batcher.submit(request.data, request.rows, request.params)
        else:
            outputs = await run_in_threadpool(self.predict_jsonable, request.data, request.params)
        self.metrics.rows.observe(request.rows)
        self._count_predictions(outputs)
        return encode_predictions(outputs)

    def predict_jsonable(self, data: Any, params: dict[str, Any] | None) -> Any:
        """Predict; the output as MLflow's server encodes it (DataFrames as records)."""
        started = time.perf_counter()
        try:
            predictions = self.model.predict(data, params)
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
        outputs = _jsonable(predictions)
        if self.drift is not None and isinstance(data, pd.DataFrame):
            self.drift.observe(data, outputs)
        return outputs

    def _count_predictions(self, outputs: Any) -> None:
        counts: dict[str, int] = {}
        for row in outputs if isinstance(outputs, list) else [outputs]:
            level = row.get("risk_level") if isinstance(row, dict) else None
            key = str(level) if level is not None else "none"
            counts[key] = counts.get(key, 0) + 1
        for level, count in counts.items():
            self.metrics.predictions.labels(level).inc(count)


def _jsonable(predictions: Any) -> Any:
    """MLflow's encoding (DataFrames as records), with the same Python values."""
    if isinstance(predictions, pd.DataFrame) and predictions.columns.is_unique:
        return frame_records(predictions)
    return _get_jsonable_obj(predictions, pandas_orient="records")
