"""Liveness and readiness: MLflow's /ping and /health, Kubernetes' /livez and /readyz."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.errors import NotReadyError, error_response
from app.readiness import Readiness


def build_probe_router(readiness: Readiness) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/ping", summary="Liveness (MLflow-compatible)")
    @router.get("/health", summary="Liveness (MLflow-compatible)")
    async def ping() -> Response:
        # MLflow answers "\n" with 200 once the model is loaded; ours is loaded before fork.
        return Response("\n", media_type="application/json")

    @router.get("/livez", summary="The process answers; never touches the model")
    async def livez() -> Response:
        return Response(b'{"status":"alive"}', media_type="application/json")

    @router.get(
        "/readyz",
        summary="200 once this worker's warm-up prediction passed, 503 before",
        responses={
            NotReadyError.status_code: {
                "description": f"Not ready ({NotReadyError.error_code})",
            }
        },
    )
    async def readyz() -> Response:
        if readiness.ready:
            return Response(b'{"status":"ready"}', media_type="application/json")
        error = NotReadyError(f"not ready: {readiness.reason}")
        return error_response(error)

    return router
