"""The data plane: one scoring request from body bytes to response bytes.

Routes hand it the body and content type; it parses (MLflow's protocol), validates against
the signature, hands tabular requests to the micro-batcher (others are predicted alone),
records model metrics and encodes as MLflow does. It knows nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from starlette.concurrency import run_in_threadpool

from app.errors import PredictionFailedError
from app.observability.drift import DriftMonitor
from app.observability.metrics import ServingMetrics
from app.observability.stages import ENCODE, PARSE, PREDICT, VALIDATE, current_stage_times
from app.protocol.budget import RequestBudget
from app.protocol.encoding import encode_predictions, to_jsonable
from app.protocol.frames import FrameBuilder
from app.protocol.parsing import JSON, ScoringRequest, parse_request
from app.protocol.validation import check_params
from app.runtime.batching import MicroBatcher
from app.runtime.guardrails import RequestGuardrails
from app.runtime.input_refusal import input_refusal
from app.runtime.model import ServedModel
from app.runtime.predict_cost import PredictCost
from app.runtime.shadow import ShadowScorer
from app.settings import Settings

logger = logging.getLogger(__name__)

_FAILED = "the model failed to score this request; the server log has the detail"
# Distinct values of the counted output field labelled apart; more are counted as "other",
# so a field of free text cannot flood /metrics with series.
MAX_COUNTED_VALUES = 32


class Scorer:
    def __init__(
        self,
        model: ServedModel,
        metrics: ServingMetrics,
        settings: Settings,
        drift: DriftMonitor | None = None,
        guardrails: RequestGuardrails | None = None,
        shadow: ShadowScorer | None = None,
        predict_cost: PredictCost | None = None,
    ) -> None:
        self.model = model
        self.guardrails = guardrails
        self.metrics = metrics
        self.drift = drift
        self.shadow = shadow
        # Told the time of every served-model predict made for a request (not the warm-up's).
        self.predict_cost = predict_cost
        self._predicts_apart = 0  # requests not batched being predicted in the thread pool now
        self.to_frame = FrameBuilder(model.input_schema)
        self.budget = RequestBudget.for_model(
            model.input_schema,
            max_rows=settings.max_request_rows,
            max_columns=settings.max_request_columns,
            max_cells=settings.max_request_cells,
            max_decoded_bytes=settings.max_body_bytes,
        )
        schema = model.params_schema
        self._declared_params = {spec.name for spec in schema.params} if schema else set()
        hints = model.description.serving
        self._count_field = hints.count_predictions_by
        self._counted_values: set[str] = set()
        # A model with no signature cannot be checked before predict: when it raises, the
        # input is the likely cause, as MLflow's server assumes too.
        self._unchecked = model.input_schema is None
        self.batching = (
            hints.rows_are_independent if settings.batching is None else settings.batching
        )
        self.batcher = MicroBatcher(
            self.predict_jsonable,
            self.to_frame,
            enabled=self.batching,
            max_batch_rows=settings.batch_max_rows,
            max_wait_seconds=settings.batch_max_wait_ms / 1000,
            inline_max_seconds=settings.inline_predict_max_ms / 1000,
            observe_batch=metrics.batch_rows.observe,
            guardrails=guardrails,
            observe_cost=None if predict_cost is None else predict_cost.record,
        )

    def parse(self, body: bytes, content_type: str | None) -> ScoringRequest:
        times = current_stage_times()
        request = parse_request(
            body,
            content_type,
            self.model.contract,
            self.budget,
            _untimed if times is None else partial(times.lap, PARSE),
        )
        if times is not None and times.last_stage != PARSE:
            times.lap(PARSE)  # a shape handed to the model as parsed: no value checks here
        if request.unwrapped or request.params is None:
            return request  # MLflow passes these params on as they came
        return dataclasses.replace(request, params=self.accept_params(request.params))

    def accept_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Params as the model gets them: checked against its params schema, and those it
        does not declare dropped, as MLflow drops them, but here: MLflow would log their
        names, which are the caller's text, verbatim. A params object stays an object, even
        empty: MLflow hands the model {} for it, not None."""
        check_params(params, self.model.params_schema)
        declared = self._declared_params
        return {k: v for k, v in params.items() if k in declared}

    async def score(
        self,
        request: ScoringRequest,
        encode: Callable[[Any, ScoringRequest], bytes] | None = None,
    ) -> bytes:
        """The answer's bytes; `encode` makes them from the output (default: MLflow's
        `{"predictions": ...}`; the V2 route passes its own)."""
        times = current_stage_times()
        if times is not None:
            times.lap(VALIDATE)  # params and the row budget were checked since parsing
        guardrails = self.guardrails
        if guardrails is not None:
            guardrails.refuse_while_open()
        if request.batchable:  # the batcher applies the rules, once per combined call
            outputs = await self.batcher.submit(request.data, request.rows, request.params, times)
            if times is not None:
                times.resume()  # the batcher timed batch_wait and predict
        else:
            verdict = (
                None if guardrails is None else guardrails.check_input(request.data, request.rows)
            )
            outputs = await self._predict_apart(request.data, request.params)
            if times is not None:
                times.lap(PREDICT)
            if guardrails is not None and verdict is not None:
                guardrails.check_output(request.data, outputs, verdict)
        self.metrics.rows.observe(request.rows)
        self._count_predictions(outputs)
        if self.shadow is not None:  # queued for the candidate, never waited for
            self.shadow.offer(
                request.data, request.batchable, request.params, request.rows, outputs
            )
        body = (encode or _encode)(outputs, request)
        if times is not None:
            times.lap(ENCODE)
        return body

    async def warm_up(self, body: bytes) -> None:
        """Score `body` as a request is scored (parse, predict, encode), recording nothing:
        no request metrics, no drift. Raises what the request would answer."""
        request = self.parse(body, JSON)
        data = self.to_frame(request.data) if request.batchable else request.data
        outputs = await run_in_threadpool(self._predict, data, request.params)
        _encode(outputs, request)

    async def _predict_apart(self, data: Any, params: dict[str, Any] | None) -> Any:
        """A request that is not batched, predicted in the thread pool, where such requests
        run side by side: the call's time is shared by the predicts running with it (the
        most of them at its start or its end), so concurrency does not pass for cost."""
        cost = self.predict_cost
        if cost is None:
            return await run_in_threadpool(self.predict_jsonable, data, params)
        self._predicts_apart += 1
        at_start = self._predicts_apart
        try:
            outputs, seconds = await run_in_threadpool(self._predict_timed, data, params)
            cost.record(seconds, max(at_start, self._predicts_apart))
        finally:
            self._predicts_apart -= 1
        return outputs

    def _predict_timed(self, data: Any, params: dict[str, Any] | None) -> tuple[Any, float]:
        started = time.perf_counter()
        outputs = self.predict_jsonable(data, params)
        return outputs, time.perf_counter() - started

    def predict_jsonable(self, data: Any, params: dict[str, Any] | None) -> Any:
        """Predict; the output as MLflow's server makes it JSON-able (DataFrames as records)."""
        outputs = self._predict(data, params)
        if self.drift is not None and isinstance(data, pd.DataFrame):
            self.drift.observe(data, outputs)
        return outputs

    def _predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        started = time.perf_counter()
        # Every predict of the served model comes here (batched, alone, inline, warm-up); a
        # shadow's does not: it runs off the request path, and no client waits for it.
        in_progress = self.metrics.predicts_in_progress.begin()
        try:
            predictions = self.model.predict(data, params)
        except Exception as error:
            refusal = input_refusal(error, unchecked=self._unchecked)
            if refusal is not None:
                raise refusal from None
            name = error.error_code if isinstance(error, MlflowException) else type(error).__name__
            logger.exception("the model failed with %s", name)
            raise PredictionFailedError(_FAILED) from error
        finally:
            self.metrics.predicts_in_progress.end(in_progress)
            self.metrics.predict_seconds.observe(time.perf_counter() - started)
        return to_jsonable(predictions)

    def _count_predictions(self, outputs: Any) -> None:
        field_name = self._count_field
        if field_name is None:
            self.metrics.predictions_for("", "").inc(_row_count(outputs))
            return
        counts: dict[str, int] = {}
        for row in outputs if isinstance(outputs, list) else [outputs]:
            value = row.get(field_name) if isinstance(row, dict) else None
            key = "none" if value is None else str(value)[:64]
            if key not in self._counted_values:
                if len(self._counted_values) >= MAX_COUNTED_VALUES:
                    key = "other"
                else:
                    self._counted_values.add(key)
            counts[key] = counts.get(key, 0) + 1
        for value, count in counts.items():
            self.metrics.predictions_for(field_name, value).inc(count)


def _untimed() -> None:
    """Outside a request (the warm-up) no stage is timed."""


def _encode(outputs: Any, request: ScoringRequest) -> bytes:
    try:
        return encode_predictions(outputs, unwrapped=request.unwrapped)
    except TypeError as error:  # orjson's JSONEncodeError: an output type MLflow refuses too
        logger.error("the model's output cannot be encoded as JSON: %s", error)
        raise PredictionFailedError(_FAILED) from None


def _row_count(outputs: Any) -> int:
    return len(outputs) if isinstance(outputs, list) else 1
