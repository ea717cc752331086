"""Admission: how many scoring requests a worker takes on, and the 503 for the rest.

The decision is made before routing, authentication, the body or any parsing: a refused
request costs an HTTP parse (Uvicorn's, in C) and one small answer, so shedding stays cheap
when it is needed most. Any ASGI server gets it from raw ASGI middleware. The production
worker decides it earlier still (`EarlyShed`, app.worker): as soon as the request's head is
parsed, its 503 goes to the request-context middleware alone, skipping every other layer
(Uvicorn's proxy headers, FastAPI's, the stage timer, tracing), since under overload the
refusals outnumber the answers. The bound counts requests, and is sized in work: the
number of requests one worker can finish within its budget predicting them one at a time.
Micro-batching only finishes them sooner, so the bound is conservative.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import OverloadedError, answer_error

logger = logging.getLogger(__name__)

SCORING_PATH = "/invocations"
# The request target of a scoring request, as the worker's HTTP parser sees it.
SCORING_TARGET = SCORING_PATH.encode()
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

    def full(self) -> bool:
        return self.held >= self.bound

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI answer to a scoring request past the bound: 503 with Retry-After."""
        scope.setdefault("state", {})["route_template"] = SCORING_PATH
        error = OverloadedError(
            f"this worker holds its limit of {self.bound} requests; retry shortly"
        )
        await answer_error(scope, send, error)


@dataclass(frozen=True)
class EarlyShed:
    """What the production worker's HTTP protocol needs to refuse a scoring request once its
    head is parsed: the worker's limit, and the app that answers the refusal (the limit's
    `refuse` inside the request-context middleware, so the 503 gets its request id, metrics
    and sampled log line as any other answer)."""

    limit: AdmissionLimit
    refusal: ASGIApp

    def refuses(self, method: bytes, target: bytes) -> bool:
        """Anything but a plain POST /invocations is left to AdmissionMiddleware."""
        return self.limit.full() and target == SCORING_TARGET and method == b"POST"


_EARLY_SHED_STATE = "early_shed"


def offer_early_shed(app: Any, shed: EarlyShed) -> None:
    """Kept on the app's state, where the worker's protocol finds it (`early_shed_of`)."""
    setattr(app.state, _EARLY_SHED_STATE, shed)


def early_shed_of(app: Any) -> EarlyShed | None:
    """The app's EarlyShed; None for any other ASGI app, which then sheds in middleware."""
    return getattr(getattr(app, "state", None), _EARLY_SHED_STATE, None)


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
        if limit.full():
            await limit.refuse(scope, receive, send)
            return
        limit.held += 1
        try:
            await self.app(scope, receive, send)
        finally:
            limit.held -= 1
