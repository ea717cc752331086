"""HTTP routes of the model: scoring, what is serving, and metrics. Translation only."""

from __future__ import annotations

import asyncio
import os

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.drift import DriftMonitor
from app.errors import DeadlineExceededError
from app.limits import read_body
from app.metrics import EXPOSITION_CONTENT_TYPE, ServingMetrics
from app.model import ServedModel
from app.openapi import invocations_openapi
from app.scoring import Scorer
from app.settings import Settings

# Bodies up to this size parse on the event loop: within the request budget that takes
# well under a millisecond, less than the hop to a thread and back.
INLINE_PARSE_MAX_BYTES = 32 * 1024


def build_model_router(
    model: ServedModel,
    scorer: Scorer,
    metrics: ServingMetrics,
    settings: Settings,
    drift: DriftMonitor | None,
) -> APIRouter:
    router = APIRouter()
    version_body = orjson.dumps(model.description.as_dict())

    async def handle(request: Request) -> bytes:
        body = await read_body(request, settings.max_body_bytes)
        content_type = request.headers.get("content-type")
        if len(body) <= INLINE_PARSE_MAX_BYTES:
            scoring_request = scorer.parse(body, content_type)
        else:
            # A large body can take a second to decode: off the loop, so this worker's
            # probes and other connections are answered meanwhile.
            scoring_request = await run_in_threadpool(scorer.parse, body, content_type)
        request.state.rows = scoring_request.rows
        scorer.budget.check_rows(scoring_request.rows)
        return await scorer.score(scoring_request)

    @router.post(
        "/invocations",
        tags=["scoring"],
        summary="Score rows with MLflow's scoring protocol",
        openapi_extra=invocations_openapi(model),
    )
    async def invocations(request: Request) -> Response:
        # Admitted already (app.admission). A timeout scope, not wait_for: no extra task.
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                body = await handle(request)
        except TimeoutError:
            raise DeadlineExceededError(
                f"no answer within {settings.request_timeout_seconds:g} s "
                "(REQUEST_TIMEOUT_SECONDS); the request was abandoned"
            ) from None
        return Response(body, media_type="application/json")

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

        @router.get("/metrics", tags=["operations"], summary="Prometheus metrics of all workers")
        async def metrics_endpoint() -> Response:
            return Response(metrics.render(), media_type=EXPOSITION_CONTENT_TYPE)

    return router
