"""Prometheus metrics, correct across Gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (the production command sets it before any import),
every worker writes its samples to files there and a scrape merges them, so any worker
answers /metrics for all. Without it (tests, one process) a private registry is used.
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from app.errors import OverloadedError, PredictionFailedError
from app.paths import SCORING_PATH, V2_INFER_TEMPLATES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Stages (app.observability.stages) run from tens of microseconds (validating one row) to seconds.
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, *LATENCY_BUCKETS)
ROW_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 10000)
EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
# A worker creates each metric file empty and then sizes it (prometheus_client), and a dead
# worker's live gauges are deleted (app.gunicorn_conf): a merge that reads a file at such
# an instant fails. The next read, a moment later, finds it whole or gone.
MERGE_RETRY_DELAYS_SECONDS = (0.001, 0.01, 0.1)
_Read = TypeVar("_Read")


def status_class(status: int) -> str:
    """The `status_class` label of a response status: "2xx", "4xx", "5xx"..."""
    return f"{status // 100}xx"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# In multiprocess mode every metric update asks the process id, to notice a fork: a
# system call per update, an eighth of a small request's time. The id is read once per
# process instead, and again in each child right after a fork (Gunicorn's workers).
_process_id = os.getpid()


def _remember_process_id() -> None:
    global _process_id
    _process_id = os.getpid()


def _current_process_id() -> int:
    return _process_id


os.register_at_fork(after_in_child=_remember_process_id)
if multiprocess_dir() is not None:
    # prometheus_client's own hook for the id (read when each metric is created).
    values.ValueClass = values.MultiProcessValue(_current_process_id)


class ServingMetrics:
    """Every metric the server records, created once per process."""

    def __init__(self) -> None:
        self._multiprocess = multiprocess_dir() is not None
        # In multiprocess mode samples live in files; a registry is only built per scrape.
        self._registry = None if self._multiprocess else CollectorRegistry()
        registry = self._registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        # A model failing on scoring requests exists from the start, at 0: a release that
        # fails from its first request would otherwise start the series with its first
        # failures, which rate() cannot count (it needs an earlier sample), and the error
        # alerts would see them a scrape later. Both protocols' scoring routes.
        for route in (SCORING_PATH, *V2_INFER_TEMPLATES):
            self.requests.labels(route, "POST", str(PredictionFailedError.status_code))
        self.request_seconds = Histogram(
            "http_request_duration_seconds",
            "Time from request received to response sent, by route template, method and "
            "status class (2xx: answered; a fast refusal must not hide a slow answer).",
            ["route", "method", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being handled now (probes and /metrics excluded).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.admission_bound = Gauge(
            "serving_admission_bound",
            "Scoring requests a worker admits at once before it sheds with 503: "
            "MAX_CONCURRENT_REQUESTS, or sized from its measured predict cost (one series "
            "per live worker, labelled pid).",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.errors = Counter(
            "serving_errors_total",
            "Error responses by error code of the JSON error body.",
            ["error_code"],
            registry=registry,
        )
        self.rejected = Counter(
            "http_requests_rejected_total",
            "Requests refused by a limit: shed (503), too_large (413), timeout (504).",
            ["reason"],
            registry=registry,
        )
        # Shed requests likewise, for the shedding alerts.
        self.rejected.labels(OverloadedError.rejected_reason)
        self.predict_seconds = Histogram(
            "model_predict_duration_seconds",
            "Time spent inside the model's predict call.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "model_stage_duration_seconds",
            "Time a scoring request spent in each stage: read, parse, validate, batch_wait, "
            "predict, encode (app.observability.stages says what each covers).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.predict_started = Gauge(
            "model_predict_started_timestamp_seconds",
            "Unix time the oldest predict call in progress in a worker started, 0 when none "
            "is: one series per live worker (label pid).",
            registry=registry,
            # live: a worker Gunicorn aborted takes its stuck predict with it; all: the
            # oldest start is per worker, a sum or max across workers would mean nothing.
            multiprocess_mode="liveall",
        )
        self.predicts_in_progress = PredictsInProgress(self.predict_started)
        self.rows = Histogram(
            "model_request_rows",
            "Rows per scoring request.",
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "model_predictions_total",
            "Scored rows, by the value of the output field the model names in its metadata "
            "(field and value empty when it names none).",
            ["field", "value"],
            registry=registry,
        )
        self.batch_rows = Histogram(
            "model_batch_rows",
            "Rows per predict call after micro-batching combined concurrent requests.",
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.feature_drift = Gauge(
            "model_feature_drift_psi",
            "PSI of each input feature over the recent window against training (max of live "
            "workers).",
            ["feature"],
            registry=registry,
            # live: a dead worker's window is gone, so its last value must go too, or a
            # drift alert could never clear until the pod restarts.
            multiprocess_mode="livemax",
        )
        self.score_drift = Gauge(
            "model_score_drift_psi",
            "PSI of the model's score over the recent window against training (max of live "
            "workers).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        # Labelled by the rules of the version serving: their number is bounded by its file.
        guardrail_labels = ["rule", "target", "severity", "mode"]
        self.guardrail_checked_rows = Counter(
            "guardrail_checked_rows_total",
            "Rows each business rule checked (app.guardrails), by rule id, the column or "
            "output field it reads, its severity and mode.",
            guardrail_labels,
            registry=registry,
        )
        self.guardrail_violating_rows = Counter(
            "guardrail_violating_rows_total",
            "Rows that broke each business rule, whatever its mode (enforce: refused, warn: "
            "answered and logged, shadow: only counted).",
            guardrail_labels,
            registry=registry,
        )
        self.guardrail_breaker_open = Gauge(
            "guardrail_breaker_open",
            "1 while a worker's guardrail breaker refuses scoring (max of live workers).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.model_info = Gauge(
            "model_info",
            "Always 1; the labels name the model serving.",
            ["name", "version", "run_id"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.model_load_seconds = Gauge(
            "model_load_duration_seconds",
            "Time the master took to resolve, download and load the model.",
            registry=registry,
            multiprocess_mode="max",
        )
        self.ready = Gauge(
            "model_ready",
            "1 in each live worker whose warm-up prediction passed.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # The children of the per-request metrics by label values, each made once:
        # `labels()` checks its arguments and takes a lock on every call, and a server
        # answers with few label sets (route templates, statuses, error codes).
        self.requests_for = functools.lru_cache(maxsize=1024)(self.requests.labels)
        self.request_seconds_for = functools.lru_cache(maxsize=256)(self.request_seconds.labels)
        self.errors_for = functools.lru_cache(maxsize=256)(self.errors.labels)
        self.rejected_for = functools.lru_cache(maxsize=64)(self.rejected.labels)
        self.predictions_for = functools.lru_cache(maxsize=256)(self.predictions.labels)

    @property
    def registry(self) -> CollectorRegistry | None:
        """The private registry of one process; None in multiprocess mode (files)."""
        return self._registry

    def render(self) -> bytes:
        """The exposition text, merged across live and dead workers in multiprocess mode."""
        if self._registry is not None:
            return generate_latest(self._registry)
        return render_merged()


class PredictsInProgress:
    """The start times of the predict calls running in one worker, the oldest in a gauge
    (0 when none runs). A predict that never ends shows as an ever older start, seen by an
    alert before Gunicorn aborts the worker (a predict holding the event loop) or while it
    holds the worker's predict thread, which no other metric shows until requests time out."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._starts: dict[int, float] = {}  # in the order they began: the first is the oldest
        self._tokens = itertools.count()
        self._lock = threading.Lock()

    def begin(self) -> int:
        """A predict call starts now; the token is for `end`."""
        with self._lock:
            token = next(self._tokens)
            self._starts[token] = time.time()
            if len(self._starts) == 1:  # otherwise an older one is still running
                self._gauge.set(self._starts[token])
        return token

    def end(self, token: int) -> None:
        with self._lock:
            oldest = next(iter(self._starts)) == token
            del self._starts[token]
            if oldest:
                self._gauge.set(next(iter(self._starts.values()), 0.0))


class WorkerExits:
    """Worker exits, counted from both sides (multiprocess mode only): Gunicorn's master
    counts every worker it reaps, a worker counts its own orderly exit (a stop, a recycle
    after MAX_REQUESTS). A worker SIGKILLed (out of memory, killed) or aborted for silence
    (TIMEOUT_SECONDS) is counted by the master alone: the difference is the deaths."""

    def __init__(self) -> None:
        self.reaped = Counter(
            "serving_worker_exits_total",
            "Worker processes that exited, however (counted by Gunicorn's master).",
            registry=None,
        )
        self.orderly = Counter(
            "serving_worker_orderly_exits_total",
            "Worker processes that exited in order: stopped or recycled, not killed or "
            "aborted (counted by the worker).",
            registry=None,
        )


def export_worker_timeout(seconds: float) -> Gauge:
    """TIMEOUT_SECONDS, exported by Gunicorn's master (multiprocess mode only): the alert on
    a stuck predict compares the age of predicts in progress with it, so it follows the
    server's setting instead of a number fitted to one model."""
    gauge = Gauge(
        "serving_worker_timeout_seconds",
        "Gunicorn aborts a worker whose event loop is silent for this long (TIMEOUT_SECONDS).",
        registry=None,
        multiprocess_mode="max",
    )
    gauge.set(seconds)
    return gauge


def _merged_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def render_merged() -> bytes:
    """Every worker's samples merged, read from PROMETHEUS_MULTIPROC_DIR by any process
    (the ops listener in Gunicorn's master included)."""
    return _read_merged(generate_latest)


def count_ready_workers() -> int:
    """Live workers whose warm-up passed: the merged `model_ready` gauge."""
    return _read_merged(lambda registry: int(registry.get_sample_value("model_ready") or 0))


def _read_merged(read: Callable[[CollectorRegistry], _Read]) -> _Read:
    for delay in MERGE_RETRY_DELAYS_SECONDS:
        try:
            return read(_merged_registry())
        except (struct.error, FileNotFoundError):  # a file being created or deleted
            time.sleep(delay)
    return read(_merged_registry())


# Absolute differences between the served model's and a shadow model's numeric outputs. The
# first bucket counts exact agreement; the next ones rounding (float32 against float64).
DIFFERENCE_BUCKETS = (0.0, 1e-9, 1e-6, 1e-4, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 10, 100)


class ShadowMetrics:
    """The comparison of a shadow model with the served one (app.runtime.shadow); created
    only when a shadow is configured, so a server without one exports none of them."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.info = Gauge(
            "model_shadow_info",
            "Always 1; the labels name the shadow model compared with the served one.",
            ["name", "version", "run_id"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.rows = Counter(
            "model_shadow_rows_total",
            "Scored rows offered to the shadow model, by outcome: compared, dropped (queue "
            "full or shutting down), failed (the shadow raised), mismatched (another row count).",
            ["outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "model_shadow_errors_total",
            "Shadow predict calls that raised.",
            registry=registry,
        )
        self.agreement = Counter(
            "model_shadow_agreement_total",
            "Compared rows by non-numeric output field, its served (primary) and shadow values "
            '(at most 32 of each, then "other") and whether the two agreed (equal values).',
            ["field", "primary", "shadow", "agreed"],
            registry=registry,
        )
        self.difference = Histogram(
            "model_shadow_difference",
            "Absolute difference between the served and the shadow value of a numeric output "
            "field, per compared row.",
            ["field"],
            buckets=DIFFERENCE_BUCKETS,
            registry=registry,
        )
        self.predict_seconds = Histogram(
            "model_shadow_predict_duration_seconds",
            "Time spent inside the shadow model's predict call (off the request path).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows_for = functools.lru_cache(maxsize=8)(self.rows.labels)
        self.agreement_for = functools.lru_cache(maxsize=4096)(self.agreement.labels)
        self.difference_for = functools.lru_cache(maxsize=256)(self.difference.labels)
