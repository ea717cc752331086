"""Admission: how many scoring requests a worker takes on, and the 503 for the rest.

The decision is made in raw ASGI middleware, before routing, authentication, the body or
any parsing: a refused request costs an HTTP parse (Uvicorn's, in C) and one small answer,
so shedding stays cheap when it is needed most. The bound counts requests, and is sized in
work: the number of requests one worker can finish within its budget predicting them one
at a time. Micro-batching only finishes them sooner, so the bound is conservative.
"""

from __future__ import annotations

import logging
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import OverloadedError, answer_error

logger = logging.getLogger(__name__)

SCORING_PATH = "/invocations"
# Until the warm-up has timed a prediction, and for models with no input example to time.
FALLBACK_BOUND = 256


class AdmissionLimit:
    """Scoring requests held by this worker, and how many it admits (set once warmed up)."""

    def __init__(self, fixed_bound: int | None, budget_seconds: float) -> None:
        self.fixed = fixed_bound is not None
        self.bound = fixed_bound if fixed_bound is not None else FALLBACK_BOUND
        self.budget_seconds = budget_seconds
        self.held = 0

    def size_from_predict(self, predict_seconds: float) -> None:
        """Derive the bound from a measured predict time, unless it was set explicitly."""
        if self.fixed:
            return
        self.bound = max(1, math.floor(self.budget_seconds / max(predict_seconds, 1e-6)))
        logger.info(
            "admission bound: %d requests per worker (%.3g s budget / %.2f ms per predict)",
            self.bound,
            self.budget_seconds,
            predict_seconds * 1000,
        )


class AdmissionMiddleware:
    """Answers a scoring request past the bound with 503 at once; counts the ones it admits.

    Sits inside the request-context middleware, so a refused request still gets its request
    id, log line and metrics (http_requests_rejected_total{reason="shed"}).
    """

    def __init__(self, app: ASGIApp, *, limit: AdmissionLimit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SCORING_PATH:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["route_template"] = SCORING_PATH
        limit = self.limit
        if limit.held >= limit.bound:
            error = OverloadedError(
                f"this worker holds its limit of {limit.bound} requests; retry shortly"
            )
            await answer_error(scope, send, error)
            return
        limit.held += 1
        try:
            await self.app(scope, receive, send)
        finally:
            limit.held -= 1
