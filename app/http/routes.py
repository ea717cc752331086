"""HTTP routes of the model: scoring, what is serving, and metrics. Translation only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.errors import DeadlineExceededError, ServingError, answer_error, send_json
from app.http.limits import read_body
from app.observability.drift import DriftMonitor
from app.observability.metrics import EXPOSITION_CONTENT_TYPE, ServingMetrics
from app.paths import METRICS_PATH, SCORING_PATH
from app.runtime.model import ServedModel
from app.runtime.scoring import Scorer
from app.settings import Settings

# Bodies up to this size parse on the event loop: within the request budget that takes
# well under a millisecond, less than the hop to a thread and back.
INLINE_PARSE_MAX_BYTES = 32 * 1024

_Parsed = TypeVar("_Parsed")


async def parse_body(body: bytes, parse: Callable[[bytes], _Parsed]) -> _Parsed:
    """`parse(body)`, on the loop for a small body. A large body can take a second to
    decode: off the loop, so this worker's probes and other connections are answered
    meanwhile."""
    if len(body) <= INLINE_PARSE_MAX_BYTES:
        return parse(body)
    return await run_in_threadpool(parse, body)


async def answer_in_time(
    scope: Scope, send: Send, timeout_seconds: float, answer: Coroutine[Any, Any, bytes]
) -> None:
    """A scoring endpoint's answer: 200 with the bytes `answer` makes, or the error it
    raised, or a 504 past REQUEST_TIMEOUT_SECONDS (the request is abandoned). Admitted
    already (app.http.admission). A timeout scope, not wait_for: no extra task."""
    try:
        async with asyncio.timeout(timeout_seconds):
            body = await answer
    except TimeoutError:
        error: ServingError = DeadlineExceededError(
            f"no answer within {timeout_seconds:g} s "
            "(REQUEST_TIMEOUT_SECONDS); the request was abandoned"
        )
    except ServingError as raised:
        error = raised
    else:
        await send_json(send, 200, body)
        return
    await answer_error(scope, send, error)


class InvocationsEndpoint:
    """POST /invocations as a plain ASGI app: the body, the scorer, the answer.

    FastAPI's request handling (a Request object, dependency solving, a Response class and
    its exception middleware) costs more than everything else a small model's request
    needs, so the scoring route, and only it, goes without (app.http.application); its OpenAPI
    entry is written in app.http.openapi. Errors are answered here, in the one error body
    (app.errors).
    """

    def __init__(self, scorer: Scorer, settings: Settings) -> None:
        self.scorer = scorer
        self.max_body_bytes = settings.max_body_bytes
        self.timeout_seconds = settings.request_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        await answer_in_time(scope, send, self.timeout_seconds, self._score(scope, receive, state))

    async def _score(self, scope: Scope, receive: Receive, state: dict[str, Any]) -> bytes:
        headers = Headers(scope=scope)
        body = await read_body(headers, receive, self.max_body_bytes)
        content_type = headers.get("content-type")
        scorer = self.scorer
        scoring_request = await parse_body(body, partial(scorer.parse, content_type=content_type))
        state["rows"] = scoring_request.rows
        scorer.budget.check_rows(scoring_request.rows)
        return await scorer.score(scoring_request)


def build_model_router(
    model: ServedModel,
    scoring_endpoint: InvocationsEndpoint,
    metrics: ServingMetrics,
    settings: Settings,
    drift: DriftMonitor | None,
) -> APIRouter:
    router = APIRouter()
    # First: the route a scoring request is matched against first, when it takes FastAPI's
    # way (app.http.application dispatches POST straight to the endpoint).
    router.routes.append(
        Route(
            SCORING_PATH,
            endpoint=scoring_endpoint,
            methods=["POST"],
            name="invocations",
        )
    )
    version_body = orjson.dumps(model.description.as_dict())

    @router.get("/version", tags=["model"], summary="The model serving and package versions")
    async def version() -> Response:
        return Response(version_body, media_type="application/json")

    @router.get(
        "/drift",
        tags=["model"],
        summary="Per-feature and score PSI of this worker's recent rows against training",
    )
    async def drift_report() -> Response:
        if drift is None:
            report: dict[str, object] = {"enabled": False, "reason": "no training profile"}
        else:
            report = {"enabled": True, "pid": os.getpid(), **drift.report()}
        return Response(orjson.dumps(report), media_type="application/json")

    if settings.metrics_on_main_port:

        @router.get(METRICS_PATH, tags=["operations"], summary="Prometheus metrics of all workers")
        async def metrics_endpoint() -> Response:
            return Response(metrics.render(), media_type=EXPOSITION_CONTENT_TYPE)

    return router
