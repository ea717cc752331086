"""HTTP routes of the model: scoring, what is serving, and metrics. Translation only."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.metrics import EXPOSITION_CONTENT_TYPE, ServingMetrics
from app.model import ServedModel
from app.openapi import invocations_openapi
from app.scoring import Scorer


def build_model_router(model: ServedModel, scorer: Scorer, metrics: ServingMetrics) -> APIRouter:
    router = APIRouter()
    version_body = orjson.dumps(model.description.as_dict())

    @router.post(
        "/invocations",
        tags=["scoring"],
        summary="Score rows with MLflow's scoring protocol",
        openapi_extra=invocations_openapi(model),
    )
    async def invocations(request: Request) -> Response:
        body = await request.body()
        # Parsing, validation and predict are CPU-bound: keep them off the event loop.
        result = await run_in_threadpool(scorer.score, body, request.headers.get("content-type"))
        request.state.rows = result.rows
        return Response(result.body, media_type="application/json")

    @router.get("/version", tags=["model"], summary="The model serving and package versions")
    async def version() -> Response:
        return Response(version_body, media_type="application/json")

    @router.get("/metrics", tags=["operations"], summary="Prometheus metrics of all workers")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=EXPOSITION_CONTENT_TYPE)

    return router
