"""Admission: how many scoring requests a worker takes on, and the 503 for the rest.

The decision is made before routing, authentication, the body or any parsing: a refused
request costs an HTTP parse (Uvicorn's, in C) and one small answer, so shedding stays cheap
when it is needed most. Any ASGI server gets it from raw ASGI middleware. The production
worker decides it earlier still (`EarlyShed`, app.server.early_refusal): as soon as the
request's head is parsed, it writes the 503 there and then, with no ASGI app, task or
middleware layer (only the request accounting), since under overload the refusals outnumber
the answers. The bound counts requests, and is sized in work: the number of requests one
worker can finish within its budget at what a request costs its predict calls. The warm-up
gives the first cost (one request predicted alone); from then on the worker's own predict
calls do (app.runtime.predict_cost), micro-batched calls shared by the requests they
answer, so a warm-up slowed by a busy machine does not keep the bound low, and a model that
becomes slower does not keep it high. Each estimate moves the bound at most by a factor of
MAX_STEP, and not at all by less than DEADBAND of it, so it neither jumps nor jitters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import OverloadedError, ServingError, answer_error, http_error_response
from app.http.middleware import RequestAccounting
from app.paths import SCORING_PATH, request_target

logger = logging.getLogger(__name__)

# The scoring paths (as an ASGI scope decodes them) with their route templates:
# /invocations, and the served model's V2 inference paths (app.paths.v2_infer_paths).
ScoringPaths = Mapping[str, str]
DEFAULT_SCORING_PATHS: ScoringPaths = {SCORING_PATH: SCORING_PATH}
# Until the warm-up has timed a prediction; for a model with no input example to time,
# until its first predicts for requests have.
FALLBACK_BOUND = 256
# In a request's scope state: the worker's protocol admitted it, and its slot is held.
_ADMITTED = "admitted_by_worker"

# One estimate moves a sized bound at most this many times up or down.
MAX_STEP = 2
# A sized bound is not moved by an estimate within this share of it.
DEADBAND = 0.1
# A change is logged once the bound is this share away from the last one logged.
LOGGED_CHANGE = 0.25


class AdmissionLimit:
    """Scoring requests held by this worker, and how many it admits: set explicitly, or
    sized from the warm-up's predict time and then from the predict calls it makes.
    Everything here runs on the worker's event loop (the predicts are timed in their
    thread, and reported on the loop), so it needs no lock."""

    def __init__(
        self, fixed_bound: int | None, budget_seconds: float, gauge: Gauge | None = None
    ) -> None:
        self.fixed = fixed_bound is not None
        self.bound = fixed_bound if fixed_bound is not None else FALLBACK_BOUND
        self.budget_seconds = budget_seconds
        self.held = 0
        self._gauge = gauge
        self._logged_bound: int | None = None  # None until sized from a measured predict

    def export(self) -> None:
        """Publish the bound as a metric (in each worker, after fork; then on every change)."""
        if self._gauge is not None:
            self._gauge.set(self.bound)

    def size_from_predict(self, predict_seconds: float) -> None:
        """Size the bound from a measured cost per request, unless it was set explicitly:
        the first cost sets it outright, later ones move it by at most MAX_STEP at a time."""
        if self.fixed:
            return
        target = max(1, math.floor(self.budget_seconds / max(predict_seconds, 1e-6)))
        logged = self._logged_bound
        if logged is None:
            bound = target
        else:
            current = self.bound
            bound = min(max(target, math.ceil(current / MAX_STEP)), current * MAX_STEP)
            if abs(bound - current) <= current * DEADBAND:
                return
        self.bound = bound
        self.export()
        if logged is not None and abs(bound - logged) < logged * LOGGED_CHANGE:
            return
        self._logged_bound = bound
        logger.info(
            "admission bound: %d requests per worker (%.3g s budget / %.2f ms per %s)",
            bound,
            self.budget_seconds,
            predict_seconds * 1000,
            "predict" if logged is None else f"request over recent predicts; was {logged}",
        )

    def take(self) -> bool:
        """Take a slot if one is free; whoever took it gives it back with `release`."""
        if self.held >= self.bound:
            return False
        self.held += 1
        return True

    def release(self) -> None:
        """Give back a slot `take` gave."""
        self.held -= 1

    def refusal(self) -> OverloadedError:
        """The 503 (with Retry-After) for a scoring request past the bound."""
        return OverloadedError(
            f"this worker holds its limit of {self.bound} requests; retry shortly"
        )


@dataclass(frozen=True)
class EarlyShed:
    """What the production worker's HTTP protocol needs to refuse a scoring request once its
    head is parsed, with no ASGI app at all: the worker's limit, and the accounting that
    gives the refusal what any answer gets (request id, metrics, sampled log line). The
    protocol's other answer without the app, the 431, is accounted here too."""

    limit: AdmissionLimit
    accounting: RequestAccounting
    scoring_paths: ScoringPaths = field(default_factory=lambda: dict(DEFAULT_SCORING_PATHS))
    _targets: dict[bytes, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The request targets as the worker's HTTP parser sees them (no query string).
        targets = {request_target(path): path for path in self.scoring_paths}
        object.__setattr__(self, "_targets", targets)

    def refuses(self, method: bytes, target: bytes, state: dict[str, Any]) -> bool:
        """True for a plain POST to a scoring path past the bound. Below it, the request
        takes its slot now, noted in its scope `state` for AdmissionMiddleware, which
        releases it: a turn of the event loop reads many requests before any of their apps
        runs, and all would pass if only the middleware counted. Anything else is left to
        AdmissionMiddleware."""
        if method != b"POST" or target not in self._targets:
            return False
        if not self.limit.take():
            return True
        state[_ADMITTED] = True
        return False

    def release_unserved(self, state: dict[str, Any]) -> None:
        """Give back the slot `refuses` took for a head that did not become an HTTP request
        for the app (Uvicorn handed its connection to the WebSocket protocol): there is no
        AdmissionMiddleware call to release it."""
        if state.pop(_ADMITTED, False):
            self.limit.release()

    def answer(
        self, scope: Scope, default_headers: list[tuple[bytes, bytes]], target: bytes
    ) -> bytes:
        """The refusal's whole HTTP answer, accounted; `scope` holds the request's head,
        `target` is the scoring path `refuses` refused."""
        path = self._targets[target]
        scope["method"], scope["path"] = "POST", path
        scope.setdefault("state", {})["route_template"] = self.scoring_paths[path]
        return self.refused(scope, self.limit.refusal(), default_headers)

    def refused(
        self, scope: Scope, error: ServingError, default_headers: list[tuple[bytes, bytes]]
    ) -> bytes:
        """The whole HTTP answer to a request refused before the app, accounted as the
        app's answers are; `scope` names its method and route template."""
        started = time.perf_counter()
        headers = self.accounting.refused_before_the_app(scope, error, started)
        return http_error_response(error, [*default_headers, *headers], scope.get("path", ""))


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

    def __init__(
        self, app: ASGIApp, *, limit: AdmissionLimit, paths: ScoringPaths = DEFAULT_SCORING_PATHS
    ) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if template is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["route_template"] = template
        limit = self.limit
        # A request EarlyShed.refuses admitted holds its slot already.
        if not state.pop(_ADMITTED, False) and not limit.take():
            await answer_error(scope, send, limit.refusal())
            return
        try:
            await self.app(scope, receive, send)
        finally:
            limit.release()
