"""The app factory: wiring only. Gunicorn calls `app.main:create_app()` once, before fork."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.exceptions import HTTPException

from app import __version__
from app.asgi_compat import internals_problems
from app.errors import (
    ModelLoadError,
    handle_http_exception,
)
from app.guardrails.rules import GuardrailsError
from app.http.admission import AdmissionLimit, AdmissionMiddleware, EarlyShed, offer_early_shed
from app.http.application import ServingApp
from app.http.auth import ApiKeyMiddleware, ApiKeysError, load_api_keys
from app.http.guardrails_route import build_guardrails_router
from app.http.middleware import RequestAccounting, RequestContextMiddleware, ShedLogSampler
from app.http.openapi import document_invocations, document_v2_inference
from app.http.probes import build_probe_router
from app.http.routes import InvocationsEndpoint, build_model_router
from app.http.tracing import Tracing, TracingMiddleware, tracing_configured
from app.http.v2_routes import V2InferEndpoint, build_v2_router
from app.observability.drift import DriftMonitor
from app.observability.log import set_model_identity
from app.observability.metrics import ServingMetrics, ShadowMetrics
from app.observability.stages import StageTimingMiddleware
from app.paths import SCORING_PATH
from app.protocol.frames import FrameBuilder
from app.readiness import Readiness
from app.runtime.guardrails import RequestGuardrails, load_guardrails
from app.runtime.model import ServedModel, load_served_model
from app.runtime.predict_cost import PredictCost
from app.runtime.scoring import Scorer
from app.runtime.shadow import ShadowScorer
from app.runtime.warm_up import warm_up
from app.server.worker import exit_when_orphaned
from app.settings import Settings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    model: ServedModel | None = None,
    span_exporter: SpanExporter | None = None,
) -> ServingApp:
    """Load the model (unless given one) and build the app around it.

    Tracing is on when the OTEL_* settings ask for it (app.http.tracing) or a span exporter is
    given, and then only: off, no tracing code runs per request.

    A model that cannot load, or API keys configured but unusable, end the process with
    exit code 3 after one critical log line, so that Gunicorn's master, and a Kubernetes
    pod, fail loudly at start-up.
    """
    settings = settings or Settings()
    missing = internals_problems()
    if missing:
        logger.critical(
            "the installed Uvicorn, Starlette or FastAPI lacks what the server relies on, "
            "server not started: %s",
            ", ".join(missing),
        )
        raise SystemExit(3)
    # Before the model: a misconfigured key file fails the start without the download.
    try:
        api_keys = load_api_keys(settings)
    except ApiKeysError as error:
        logger.critical("authentication misconfigured, server not started: %s", error)
        raise SystemExit(3) from None
    if model is None:
        if not settings.model_uri:
            logger.critical("MODEL_URI is not set: name the model to serve, server not started")
            raise SystemExit(3)
        try:
            model = load_served_model(settings.model_uri)
        except ModelLoadError as error:
            logger.critical("model did not load, server not started: %s", error)
            raise SystemExit(3) from None
    description = model.description
    set_model_identity(description.name, description.version)
    try:
        guardrails = load_guardrails(model)
    except GuardrailsError as error:
        logger.critical("the version's guardrails are unusable, server not started: %s", error)
        raise SystemExit(3) from None
    if guardrails is None:
        logger.info("no guardrails: the model has no rules file attached (docs/guardrails.md)")
    else:
        logger.info("guardrails: %d rules, sha256 %s", len(guardrails.rules), guardrails.sha256)
    logger.info(
        "model loaded: %s resolved to %s in %.2f s",
        description.requested_uri,
        description.resolved_uri,
        description.load_seconds,
    )

    metrics = ServingMetrics()
    readiness = Readiness()
    drift = (
        DriftMonitor(
            description.training_profile,
            metrics,
            window_rows=settings.drift_window_rows,
            min_rows=settings.drift_min_rows,
            sample_interval_seconds=settings.drift_sample_interval_ms / 1000,
        )
        if description.training_profile
        else None
    )
    request_guardrails = (
        RequestGuardrails(guardrails, metrics, readiness) if guardrails is not None else None
    )
    shadow = _build_shadow(settings, model, metrics)
    admission = AdmissionLimit(
        settings.max_concurrent_requests,
        min(settings.admission_budget_seconds, settings.request_timeout_seconds),
        metrics.admission_bound,
    )
    # A fixed bound never moves: its predicts need not be followed.
    predict_cost = None if admission.fixed else PredictCost(admission.size_from_predict)
    scorer = Scorer(
        model,
        metrics,
        settings,
        drift,
        guardrails=request_guardrails,
        shadow=shadow,
        predict_cost=predict_cost,
    )
    tracing = (
        Tracing(description, span_exporter)
        if span_exporter is not None or tracing_configured(settings)
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Runs in each worker after fork: per-process metrics and the warm-up prediction.
        metrics.model_info.labels(
            description.name or "", description.version or "", description.run_id or ""
        ).set(1)
        metrics.model_load_seconds.set(description.load_seconds)
        admission.export()
        scorer.batcher.start()
        if shadow is not None:
            shadow.start()
        if tracing is not None:
            tracing.start()
        warming = asyncio.create_task(
            warm_up(model, scorer, readiness, metrics, admission.size_from_predict)
        )
        orphan_watch = asyncio.create_task(exit_when_orphaned())
        breaker_watch = (
            asyncio.create_task(request_guardrails.watch_breaker())
            if request_guardrails is not None
            else None
        )
        yield
        orphan_watch.cancel()
        if breaker_watch is not None:
            breaker_watch.cancel()
        warming.cancel()
        await scorer.batcher.stop()
        if shadow is not None:
            shadow.stop()
        if tracing is not None:
            tracing.stop()
        metrics.ready.set(0)

    scoring_endpoint = InvocationsEndpoint(scorer, settings)
    v2_endpoint = V2InferEndpoint(scorer, settings)
    app = ServingApp(
        scoring_endpoint=scoring_endpoint,
        other_scoring=dict.fromkeys(v2_endpoint.paths, v2_endpoint),
        title="Model serving",
        version=__version__,
        description=f"Serving {description.name or description.resolved_uri} "
        f"version {description.version or 'n/a'} with MLflow's scoring protocol and the "
        "Open Inference Protocol (V2).",
        lifespan=lifespan,
    )
    # The model's routes first: a scoring request is matched against its route first.
    app.include_router(build_model_router(model, scoring_endpoint, metrics, settings, drift))
    app.include_router(build_probe_router(readiness))
    app.include_router(build_v2_router(model, v2_endpoint, readiness))
    app.include_router(build_guardrails_router(request_guardrails))
    document_invocations(app, model, guardrails)
    document_v2_inference(app, model)
    app.add_exception_handler(HTTPException, handle_http_exception)
    if api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=api_keys, settings=settings)
    # Outside authentication and routing: a request past the bound costs nothing more.
    scoring_paths = {SCORING_PATH: SCORING_PATH, **v2_endpoint.paths}
    app.add_middleware(AdmissionMiddleware, limit=admission, paths=scoring_paths)
    # Added last, so outermost: 401s and every other answer get a request id and a log line.
    accounting = RequestAccounting(
        metrics=metrics,
        model=description,
        log_probes=settings.log_probes,
        shed_log=ShedLogSampler(),
    )
    app.add_middleware(RequestContextMiddleware, accounting=accounting)
    # The production worker refuses past the bound before any of the layers above.
    offer_early_shed(app, EarlyShed(admission, accounting, scoring_paths))
    # Outside the request line, so that line is written inside the request's span.
    if tracing is not None:
        app.add_middleware(TracingMiddleware, tracing=tracing)
    # Outermost: every stage of the request is timed within it.
    app.add_middleware(StageTimingMiddleware, metrics=metrics, server_timing=settings.server_timing)
    return app


def _build_shadow(
    settings: Settings, model: ServedModel, metrics: ServingMetrics
) -> ShadowScorer | None:
    """The candidate SHADOW_MODEL_URI names, fed what the served model is fed; None unset.
    Its queued requests are predicted together under the rule the served model's
    micro-batching follows (BATCHING, or the candidate's own metadata)."""
    if not settings.shadow_model_uri:
        return None
    shadow_model = _load_shadow_model(settings.shadow_model_uri)
    combine = settings.batching
    if combine is None:
        combine = shadow_model.description.serving.rows_are_independent
    return ShadowScorer(
        shadow_model,
        FrameBuilder(model.input_schema),
        ShadowMetrics(metrics.registry),
        sample_rate=settings.shadow_sample_rate,
        queue_size=settings.shadow_queue_size,
        combine=combine,
        max_batch_rows=settings.batch_max_rows,
    )


def _load_shadow_model(uri: str) -> ServedModel:
    """The candidate to compare: asked for by the operator, so one that cannot load stops
    the start (exit 3) rather than serving without the comparison they expect."""
    try:
        shadow_model = load_served_model(uri)
    except ModelLoadError as error:
        logger.critical("shadow model did not load, server not started: %s", error)
        raise SystemExit(3) from None
    logger.info(
        "shadow model loaded: %s resolved to %s in %.2f s; its answers are compared, never sent",
        uri,
        shadow_model.description.resolved_uri,
        shadow_model.description.load_seconds,
    )
    return shadow_model
