"""Every setting of the server, read once from the environment and validated at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment variables of the same name (case-insensitive) set each field.

    MLflow's own variables (MLFLOW_TRACKING_URI, credentials, ...) are left to MLflow.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    model_uri: str | None = Field(
        None,
        description="The model to serve: any MLflow model URI (models:/NAME/Stage, "
        "models:/NAME@alias, models:/NAME/3, runs:/...) or a local model directory. "
        "Required: the server has no model of its own.",
    )
    host: str = Field("127.0.0.1", description="Address to bind; the image uses 0.0.0.0.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to bind.")
    ops_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the ops listener: probes and /metrics, answered by a thread in "
        "Gunicorn's master, apart from the scoring workers (0: none). Kubernetes uses 8001.",
    )
    metrics_on_main_port: bool = Field(
        True, description="Also serve /metrics on PORT; turn off when OPS_PORT serves it."
    )
    workers: int = Field(2, ge=1, le=64, description="Gunicorn worker processes.")
    log_level: str = Field(
        "info",
        pattern="^(debug|info|warning|error|critical)$",
        description="Lowest level of the log lines written: the server's, Gunicorn's, MLflow's.",
    )
    timeout_seconds: int = Field(
        60, ge=1, description="Gunicorn kills a worker silent for this long."
    )
    graceful_timeout_seconds: int = Field(
        30, ge=1, description="On SIGTERM, in-flight requests get this long before SIGKILL."
    )
    keepalive_seconds: int = Field(
        75,
        ge=1,
        description="Idle keep-alive; longer than common load-balancer idle timeouts (60 s) "
        "so the balancer, not us, closes idle connections.",
    )
    max_requests: int = Field(
        100_000,
        ge=0,
        description="Recycle a worker after this many requests (0: never; shed 503s do not "
        "count); the new one forks from the master, so it starts with the model already loaded.",
    )
    max_requests_jitter: int = Field(
        10_000, ge=0, description="Random extra requests before recycling, so workers differ."
    )
    server_timing: bool = Field(
        False,
        description="Add a Server-Timing header to scoring responses: the time of each stage "
        "of that request (read, parse, validate, batch_wait, predict, encode) in ms.",
    )

    # Tracing: the OpenTelemetry SDK reads these (and its other OTEL_* variables) itself;
    # they are here to decide once, at start-up, whether tracing is on.
    otel_sdk_disabled: bool = Field(False, description="true: no tracing, whatever else is set.")
    otel_traces_exporter: Literal["otlp", "none"] | None = Field(
        None,
        description="otlp: trace (to localhost:4318 unless an endpoint is set); none: do not. "
        "Unset: trace when an OTLP endpoint is set.",
    )
    otel_exporter_otlp_endpoint: str = Field(
        "", description="OTLP/HTTP collector base URL (the SDK appends /v1/traces)."
    )
    otel_exporter_otlp_traces_endpoint: str = Field(
        "", description="OTLP/HTTP URL for traces, used as given."
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf"] = Field(
        "http/protobuf", description="Only OTLP over HTTP with protobuf is installed."
    )
    otel_exporter_otlp_traces_protocol: Literal["http/protobuf"] = Field(
        "http/protobuf", description="As OTEL_EXPORTER_OTLP_PROTOCOL, for traces."
    )

    log_probes: bool = Field(
        False,
        description="Log healthy probe and /metrics requests too; failed ones always are.",
    )

    # Shadow scoring (app.runtime.shadow)
    shadow_model_uri: str | None = Field(
        None,
        description="A candidate model scored beside the served one, off the request path: "
        "any MLflow model URI, as MODEL_URI. Its answers are compared with the served model's "
        "field by field (model_shadow_* metrics) and never sent to a client. It loads at start "
        "with the served model; one that cannot load stops the start (exit 3). Unset: none.",
    )
    shadow_sample_rate: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of scored requests also sent to the shadow model (when one is set).",
    )
    shadow_queue_size: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Requests waiting for the shadow model, per worker; past it, shadow work "
        'is dropped and counted (model_shadow_rows_total{outcome="dropped"}), never the '
        "client's request.",
    )

    # Micro-batching (per worker)
    batching: bool | None = Field(
        None,
        description="Combine concurrent requests into one predict call. Unset: only for a "
        "model that declares its rows independent (metadata serving.rows_are_independent); "
        "true: for any model (the operator vouches for it); false: one call per request.",
    )
    batch_max_rows: int = Field(512, ge=1, description="Most rows in one combined predict.")
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0.0,
        le=1000.0,
        description="Under concurrent load (requests queued during the last predict), wait "
        "this long for more before the next predict; a lone request never waits. 0: never.",
    )
    inline_predict_max_ms: float = Field(
        25.0,
        ge=0.0,
        le=1000.0,
        description="A lone request is predicted on the event loop, without the hop to the "
        "predict thread, when the last predict took at most this long and had at least as "
        "many rows (any request, when it took under 1 ms); this bounds how long the loop is "
        "held. 0: always the predict thread.",
    )

    # Limits
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body, after decompression."
    )
    max_request_rows: int = Field(10_000, ge=1, description="Most rows in one request.")
    max_request_columns: int = Field(
        2048,
        ge=1,
        description="Most columns in one request, checked before any table is built; a model "
        "whose signature has more columns gets its width instead.",
    )
    max_request_cells: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="Most values (rows times columns) in one request, checked before any "
        "table is built; a JSON or CSV body under the default MAX_BODY_BYTES holds fewer.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=8 * 1024,
        description="Largest request head (request line and headers); past it, 431 at once "
        "and the connection is closed.",
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="A scoring request not answered by then gets 504."
    )
    max_concurrent_requests: int | None = Field(
        None,
        ge=1,
        description="Scoring requests one worker admits at once; more get 503 with "
        "Retry-After before their body is read. Set, it never changes. Unset: sized after "
        "warm-up from the measured predict time, then kept in step with the worker's own "
        "predict calls (see admission_budget_seconds).",
    )
    admission_budget_seconds: float = Field(
        0.5,
        gt=0,
        description="Predict time one worker may have admitted: unless MAX_CONCURRENT_REQUESTS "
        "is set, the bound is this (at most REQUEST_TIMEOUT_SECONDS) divided by the predict "
        "time per request: the warm-up's first, then the median of the worker's last 16 "
        "predict calls (a micro-batched call's time shared by its requests), moving at most "
        "2x per 16 calls, so admitted requests finish within it.",
    )

    # Drift
    drift_window_rows: int = Field(
        5000, ge=100, description="Recent rows per worker compared with the training profile."
    )
    drift_min_rows: int = Field(
        200, ge=10, description="Rows needed in the window before drift is reported."
    )
    drift_sample_interval_ms: float = Field(
        100.0,
        ge=0.0,
        description="Record at most one predicted batch per interval, bounding the cost "
        "under load; 0 records every batch.",
    )

    # Authentication
    api_keys: str = Field(
        "",
        repr=False,
        description="Comma-separated API keys; empty with no API_KEYS_FILE disables auth.",
    )
    api_keys_file: str = Field(
        "",
        description="A file (e.g. a mounted Secret) with one API key per line. Once set, "
        "it must hold a key: missing, unreadable, empty or blank stops start-up (exit 3).",
    )
    metrics_public: bool = Field(True, description="Serve /metrics without a key.")
    docs_public: bool = Field(True, description="Serve /docs and /openapi.json without a key.")
