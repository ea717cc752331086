"""The Open Inference Protocol (V2) beside MLflow's: server and model health, metadata, and
inference for the served model. Translation only: the wire format is app.protocol.v2, and an
inference request goes through the same scorer as /invocations (limits, validation,
guardrails, batching, metrics), with admission and shedding keyed on its path too
(app.paths.v2_infer_paths). Errors answer in V2's body, `{"error": "..."}` (app.errors).
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app import __version__
from app.errors import (
    ModelNotFoundError,
    NotReadyError,
    PredictionFailedError,
    UnsupportedMediaTypeError,
    refusal,
)
from app.http.limits import read_body
from app.http.routes import answer_in_time, parse_body
from app.observability.stages import PARSE, current_stage_times
from app.paths import (
    V2_INFER_TEMPLATES,
    V2_LIVE_PATH,
    V2_MODEL_TEMPLATE,
    V2_PREFIX,
    V2_READY_PATH,
    V2_VERSION_TEMPLATE,
    v2_infer_paths,
)
from app.protocol.parsing import ScoringRequest
from app.protocol.v2 import (
    InferRequest,
    encode_infer_response,
    model_metadata,
    output_types,
    parse_infer_request,
)
from app.readiness import Readiness
from app.runtime.model import ServedModel
from app.runtime.scoring import Scorer
from app.settings import Settings

logger = logging.getLogger(__name__)

SERVER_NAME = "credit-risk-serving"
# The header of the protocol's binary tensor extension, which this server does not take.
BINARY_HEADER = "inference-header-content-length"
_FAILED = "the model's answer cannot be written as V2 tensors; the server log has the detail"


class V2InferEndpoint:
    """POST /v2/models/{name}[/versions/{version}]/infer as a plain ASGI app, as
    /invocations is (app.http.routes): the served model's paths are dispatched to it
    directly (app.http.application); another name or version reaches it through the router
    and is a 404."""

    def __init__(self, scorer: Scorer, settings: Settings) -> None:
        self.scorer = scorer
        description = scorer.model.description
        self.model_name = description.serving_name
        self.model_version = description.version
        self.paths = v2_infer_paths(self.model_name, self.model_version)
        self.output_schema = scorer.model.pyfunc_model.metadata.get_output_schema()
        self.declared_types = output_types(self.output_schema)
        self.max_body_bytes = settings.max_body_bytes
        self.timeout_seconds = settings.request_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        await answer_in_time(scope, send, self.timeout_seconds, self._infer(scope, receive, state))

    async def _infer(self, scope: Scope, receive: Receive, state: dict[str, Any]) -> bytes:
        if scope["path"] not in self.paths:
            raise model_not_found(self.model_name, self.model_version)
        headers = Headers(scope=scope)
        if BINARY_HEADER in headers:
            raise UnsupportedMediaTypeError(
                "the binary tensor data extension is not supported: send tensors as JSON "
                "(binary_data=False)"
            )
        body = await read_body(headers, receive, self.max_body_bytes)
        request = await parse_body(body, self._parse)
        state["rows"] = request.scoring.rows
        if request.request_id is None:  # the answer's id: the request's own X-Request-ID
            request = dataclasses.replace(request, request_id=state.get("request_id"))
        return await self.scorer.score(request.scoring, partial(self._encode, request))

    def _parse(self, body: bytes) -> InferRequest:
        scorer = self.scorer
        request = parse_infer_request(body, scorer.model.contract, scorer.budget)
        times = current_stage_times()
        if times is not None:
            times.lap(PARSE)
        params = request.scoring.params
        if params is None:
            return request
        scoring = dataclasses.replace(request.scoring, params=scorer.accept_params(params))
        return dataclasses.replace(request, scoring=scoring)

    def _encode(self, request: InferRequest, outputs: Any, _: ScoringRequest) -> bytes:
        try:
            return encode_infer_response(
                outputs,
                model_name=self.model_name,
                model_version=self.model_version,
                request=request,
                declared_types=self.declared_types,
            )
        except (TypeError, ValueError) as error:
            logger.error("the model's output cannot be written as V2 tensors: %s", error)
            raise PredictionFailedError(_FAILED) from None


def model_not_found(name: str, version: str | None) -> ModelNotFoundError:
    """The 404 for another model name or version; the path's text is the caller's, so the
    answer names what is served instead."""
    served = f"'{name}'" + (f" version {version}" if version else "")
    return ModelNotFoundError(f"no such model here; this server serves {served}")


def build_v2_router(
    model: ServedModel, endpoint: V2InferEndpoint, readiness: Readiness
) -> APIRouter:
    router = APIRouter(tags=["open inference protocol (V2)"])
    name, version = endpoint.model_name, endpoint.model_version
    schema = model.input_schema
    metadata = orjson.dumps(model_metadata(name, version, schema, endpoint.output_schema))
    server_body = orjson.dumps({"name": SERVER_NAME, "version": __version__, "extensions": []})
    model_ready_body = orjson.dumps({"name": name, "ready": True})
    for template in V2_INFER_TEMPLATES:
        router.routes.append(Route(template, endpoint=endpoint, methods=["POST"], name="v2_infer"))

    def unserved(request: Request) -> Response | None:
        """The 404 when the path names another model or version; None for the served one."""
        params = request.path_params
        asked = params.get("model_version")
        if params.get("model_name") != name or (asked is not None and asked != version):
            return refusal(request, model_not_found(name, version))
        return None

    def not_ready(request: Request) -> Response:
        return refusal(request, NotReadyError(f"not ready: {readiness.reason}"))

    @router.get(V2_PREFIX, summary="Server metadata")
    async def server_metadata() -> Response:
        return Response(server_body, media_type="application/json")

    @router.get(V2_LIVE_PATH, summary="Server liveness")
    async def live() -> Response:
        return Response(b'{"live":true}', media_type="application/json")

    @router.get(V2_READY_PATH, summary="Server readiness: this worker's warm-up passed")
    async def ready(request: Request) -> Response:
        if not readiness.ready:
            return not_ready(request)
        return Response(b'{"ready":true}', media_type="application/json")

    async def model_ready(request: Request) -> Response:
        if (refused := unserved(request)) is not None:
            return refused
        if not readiness.ready:
            return not_ready(request)
        return Response(model_ready_body, media_type="application/json")

    async def describe(request: Request) -> Response:
        if (refused := unserved(request)) is not None:
            return refused
        return Response(metadata, media_type="application/json")

    for template in (V2_MODEL_TEMPLATE, V2_VERSION_TEMPLATE):
        router.add_api_route(
            f"{template}/ready", model_ready, methods=["GET"], summary="Model readiness"
        )
        router.add_api_route(template, describe, methods=["GET"], summary="Model metadata")
    return router
