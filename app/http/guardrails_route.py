"""GET /guardrails: the business rules of the version serving, with their modes."""

from __future__ import annotations

import os

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from app.runtime.guardrails import RequestGuardrails


def build_guardrails_router(guardrails: RequestGuardrails | None) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/guardrails",
        tags=["model"],
        summary="The business rules this model version enforces, warns on or counts",
    )
    async def list_guardrails() -> Response:
        if guardrails is None:
            report: dict[str, object] = {"enabled": False, "rules": []}
        else:
            rules_file = guardrails.guardrails.rules_file
            breaker = guardrails.breaker
            report = {
                "enabled": True,
                "sha256": guardrails.guardrails.sha256,
                "rules": guardrails.guardrails.describe(),
                "breaker": None
                if breaker is None or rules_file.breaker is None
                else {
                    **rules_file.breaker.model_dump(mode="json"),
                    "pid": os.getpid(),
                    "open": breaker.is_open(),
                    "violation_share": round(breaker.share, 4),
                },
            }
        return Response(orjson.dumps(report), media_type="application/json")

    return router
