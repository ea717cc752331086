"""Per-request bookkeeping as pure ASGI middleware: request id, headers, metrics, one log line.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task or stream copy per
request, which matters on the hot path.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi_compat import leaf_routes
from app.errors import ServingError, answer_error, note_error
from app.observability.metrics import ServingMetrics, status_class
from app.paths import QUIET_PATHS, UNMATCHED_ROUTE
from app.runtime.model import ModelDescription

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("app.access")  # one line per request, nothing else

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Methods labelled as sent; any other the parser accepts is counted as "other", so the
# client cannot add series to /metrics.
LABELLED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
# Shed 503s come by the thousand exactly when the worker is short of time: at most one
# line per this many seconds, naming how many were not logged (all are counted in metrics).
SHED_LOG_INTERVAL_SECONDS = 1.0


class ShedLogSampler:
    """Whether a shed request gets its log line, and how many went unlogged before it."""

    def __init__(self, interval_seconds: float = SHED_LOG_INTERVAL_SECONDS) -> None:
        self.interval = interval_seconds
        self.next_line_at = 0.0
        self.unlogged = 0

    def take(self, now: float) -> int | None:
        """None to skip this line; else the count of shed lines skipped since the last."""
        if now < self.next_line_at:
            self.unlogged += 1
            return None
        self.next_line_at = now + self.interval
        skipped, self.unlogged = self.unlogged, 0
        return skipped


class RequestAccounting:
    """What every answer gets, whoever gives it: the request id and identity headers, the
    metrics and one (sampled, for sheds) log line. The request-context middleware accounts
    what the app answers; the production worker's protocol (app.http.admission.EarlyShed)
    what it refuses before any app runs."""

    def __init__(
        self,
        *,
        metrics: ServingMetrics,
        model: ModelDescription,
        log_probes: bool,
        shed_log: ShedLogSampler,
    ) -> None:
        self.metrics = metrics
        self.log_probes = log_probes
        self.shed_log = shed_log
        self.identity_headers = [
            (b"x-model-name", (model.name or "").encode("latin-1", "replace")),
            (b"x-model-version", (model.version or "").encode("latin-1", "replace")),
        ]

    def refused_before_the_app(
        self, scope: Scope, error: ServingError, started: float
    ) -> list[tuple[bytes, bytes]]:
        """Account a request the worker refused itself as any answer; returns the headers
        every answer carries."""
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        note_error(state, error)
        self.account(scope, state, error.status_code, started, counted=True)
        return self.answer_headers(request_id)

    def answer_headers(self, request_id: str) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", request_id.encode()), *self.identity_headers]

    def account(
        self, scope: Scope, state: dict[str, Any], status: int, started: float, counted: bool
    ) -> None:
        """The request's metrics and its log line, once it is answered."""
        elapsed = time.perf_counter() - started
        route = route_template(scope)
        method = scope["method"] if scope["method"] in LABELLED_METHODS else OTHER_METHOD
        metrics = self.metrics
        metrics.requests_for(route, method, str(status)).inc()
        metrics.request_seconds_for(route, method, status_class(status)).observe(elapsed)
        error_code = state.get("error_code")
        if error_code:
            metrics.errors_for(error_code).inc()
        rejected = state.get("rejected_reason")
        if rejected:
            metrics.rejected_for(rejected).inc()
        if not (counted or status >= 400 or self.log_probes):
            return
        fields: dict[str, Any] = {}
        if rejected == "shed":
            skipped = self.shed_log.take(started)
            if skipped is None:
                return
            fields["shed_unlogged"] = skipped
        access_logger.info(
            "request",
            extra={
                "request_id": state["request_id"],
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "rows": state.get("rows"),
                "error_code": error_code,
                **fields,
            },
        )


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, accounting: RequestAccounting) -> None:
        self.app = app
        self.accounting = accounting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        counted = scope["path"] not in QUIET_PATHS
        status = 500
        started_response = False
        accounting = self.accounting
        extra_headers = accounting.answer_headers(request_id)

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        if counted:
            accounting.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answered here rather than re-raised: Starlette's last-resort handler would
            # answer too, then re-raise, and Uvicorn would close the keep-alive connection
            # under the client's next request.
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            error = ServingError("internal server error; see the server log")
            if started_response:
                state["error_code"] = error.error_code
            else:
                await answer_error(scope, send_with_headers, error)
        finally:
            if counted:
                accounting.metrics.in_flight.dec()
            accounting.account(scope, state, status, started, counted)


def route_template(scope: Scope) -> str:
    """The matched route's path template, never the raw path. The scoring route names its
    own (also when shed before routing); FastAPI's router records the route it ran; an
    answer given before routing (a 401) or by another plain Starlette route (/docs,
    /openapi.json) gets the route its path matches."""
    template = scope.get("state", {}).get("route_template")
    if template is not None:
        return str(template)
    route = scope.get("route") or _matching_route(scope)
    return str(getattr(route, "path", UNMATCHED_ROUTE))


def _matching_route(scope: Scope) -> BaseRoute | None:
    """The route matching path and method, else one matching the path only (a 405)."""
    partial = None
    for route in leaf_routes(getattr(scope.get("app"), "routes", [])):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one: 128 random bits
    as 32 hex digits, as uuid4().hex, without its system call for each (ids need to be
    unique, not secret; `random` reseeds itself in each forked worker)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return f"{random.getrandbits(128):032x}"
