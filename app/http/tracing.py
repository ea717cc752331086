"""OpenTelemetry tracing of requests, off unless the SDK's standard variables configure it.

When on, each request gets a server span continuing the caller's W3C `traceparent`, with a
child span per stage (app.observability.stages), built after the fact from the request's stage
stamps: the hot path starts and ends one span and nothing more. The predict span of a combined
micro-batch links to every request span it served. Attributes name the model, rows,
content type and error code, never a value of the input. The SDK reads its own variables
(OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER[_ARG], OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, ...);
the tracer provider and its exporter thread start in each worker, after fork.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.middleware import route_template
from app.observability.log import set_trace_ids
from app.observability.stages import PREDICT, StageTimes, current_stage_times
from app.paths import QUIET_PATHS, UNMATCHED_ROUTE
from app.protocol.parsing import SUPPORTED_CONTENT_TYPES
from app.runtime.model import ModelDescription
from app.settings import Settings

logger = logging.getLogger(__name__)


def tracing_configured(settings: Settings) -> bool:
    """On when an OTLP exporter is asked for (OTEL_TRACES_EXPORTER=otlp) or an OTLP endpoint
    is set, unless OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none says otherwise."""
    if settings.otel_sdk_disabled or settings.otel_traces_exporter == "none":
        return False
    return settings.otel_traces_exporter == "otlp" or bool(
        settings.otel_exporter_otlp_endpoint or settings.otel_exporter_otlp_traces_endpoint
    )


class Tracing:
    """The tracer of one worker: built in the factory, started in each worker's lifespan."""

    def __init__(self, model: ModelDescription, exporter: SpanExporter | None = None) -> None:
        self.model_attributes = {
            "model.name": model.name or "",
            "model.version": model.version or "",
        }
        self._exporter = exporter
        self._provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()

    def start(self) -> None:
        """Start the provider and its export thread in this process (a worker, after fork)."""
        resource = Resource.create({"process.pid": os.getpid()})
        self._provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
        exporter = self._exporter or OTLPSpanExporter()  # endpoint: OTEL_EXPORTER_OTLP_*
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer(__name__)
        set_trace_ids(current_trace_ids)
        logger.info("tracing on: spans exported over OTLP/HTTP")

    def stop(self) -> None:
        """Export what is queued, then stop the export thread (each worker, on shutdown)."""
        set_trace_ids(None)
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None
        self.tracer = trace.NoOpTracer()


def current_trace_ids() -> dict[str, str] | None:
    """The trace and span ids of the current span, for the log line being written."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }


class _HeaderGetter(Getter[Scope]):
    """Reads propagation headers (traceparent, tracestate, baggage) from an ASGI scope."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for key_, value in carrier["headers"] if key_ == name]
        return found or None

    def keys(self, carrier: Scope) -> list[str]:
        return [key.decode("latin-1") for key, _ in carrier["headers"]]


_HEADERS = _HeaderGetter()


class TracingMiddleware:
    """A server span per request, current while the request runs, so every log line
    written meanwhile carries its ids; the stage spans are added when it ends. Probes and
    scrapes, every few seconds, are left out: they would bury the requests worth tracing."""

    def __init__(self, app: ASGIApp, *, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        span = self.tracing.tracer.start_span(
            method,
            context=propagate.extract(scope, getter=_HEADERS),
            kind=SpanKind.SERVER,
            attributes=self.tracing.model_attributes,
        )
        times = current_stage_times()
        if times is not None:
            times.trace_context = span.get_span_context()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            context.detach(token)
            if span.is_recording():
                _describe(span, scope, method, status)
                if times is not None:
                    self._add_stage_spans(span, times)
            span.end()

    def _add_stage_spans(self, parent: trace.Span, times: StageTimes) -> None:
        parent_context = trace.set_span_in_context(parent)
        for stage, started, ended in times.stages:
            links: list[Link] = []
            attributes: dict[str, Any] = {}
            if stage == PREDICT and times.batch is not None:
                links = [Link(peer.trace_context) for peer in times.batch if peer.trace_context]
                attributes["batch.requests"] = len(times.batch)
            child = self.tracing.tracer.start_span(
                stage,
                context=parent_context,
                links=links,
                attributes=attributes,
                start_time=times.epoch_ns(started),
            )
            child.end(end_time=times.epoch_ns(ended))


def _describe(span: trace.Span, scope: Scope, method: str, status: int) -> None:
    """The server span's name and attributes, from what the request left in its scope.
    Only names, counts and codes: no header value but a known media type, no input."""
    route = route_template(scope)
    if route != UNMATCHED_ROUTE:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.response.status_code", status)
    state = scope.get("state", {})
    if state.get("rows") is not None:
        span.set_attribute("request.rows", state["rows"])
    if state.get("error_code"):
        span.set_attribute("error.code", state["error_code"])
    media_type = _media_type(scope)
    if media_type is not None:
        span.set_attribute("request.content_type", media_type)
    if status >= 500:
        span.set_status(StatusCode.ERROR)


def _media_type(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media_type if media_type in SUPPORTED_CONTENT_TYPES else "other"
    return None
