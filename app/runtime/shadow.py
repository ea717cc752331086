"""A shadow model: a candidate scored beside the served model, off the request path.

After the served model answers a request, the scorer offers the request's input and that
answer here. A share of them (SHADOW_SAMPLE_RATE) goes into a bounded queue, without
waiting: a full queue drops the work and counts it. One thread per worker, started after
fork, predicts each with the shadow model and compares the two answers
(app.runtime.comparison) into the model_shadow_* metrics. The client's answer, status and
latency never wait for the shadow; its failures are counted and logged (their type only,
never a value), never raised.

The cost is CPU: the shadow's predict runs in the worker's process, so it holds the GIL
(and a core) while it runs, and the served model's predicts share that time. At shutdown,
work still queued is dropped and counted, and a predict in progress is given
STOP_WAIT_SECONDS at most: the shadow never holds up a graceful stop.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from app.observability.metrics import ShadowMetrics
from app.protocol.encoding import to_jsonable
from app.protocol.frames import FrameBuilder
from app.runtime.comparison import BoundedLabels, Comparison, compare_outputs
from app.runtime.model import ServedModel

logger = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 1.0
# A failing shadow would log on every request: once, then at most once per this interval.
FAILURE_LOG_INTERVAL_SECONDS = 60.0
COMPARED, DROPPED, FAILED, MISMATCHED = "compared", "dropped", "failed", "mismatched"


@dataclass(frozen=True)
class ShadowJob:
    """One scored request as the served model saw and answered it."""

    data: Any
    batchable: bool  # `data` is column data to build a frame from (app.protocol.frames)
    params: dict[str, Any] | None
    rows: int
    primary_outputs: Any


class ShadowScorer:
    def __init__(
        self,
        model: ServedModel,
        to_frame: FrameBuilder,
        metrics: ShadowMetrics,
        *,
        sample_rate: float,
        queue_size: int,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self._to_frame = to_frame
        self._sample_rate = sample_rate
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=queue_size)
        self._labels = BoundedLabels()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failures_unlogged = 0
        self._failure_logged_at = -FAILURE_LOG_INTERVAL_SECONDS

    def offer(
        self, data: Any, batchable: bool, params: dict[str, Any] | None, rows: int, outputs: Any
    ) -> None:
        """On the request path: queue the request for the shadow, or drop it, at once."""
        if self._sample_rate < 1.0 and random.random() >= self._sample_rate:  # noqa: S311
            return
        if self._stopping:
            self.metrics.rows_for(DROPPED).inc(rows)
            return
        try:
            self._queue.put_nowait(ShadowJob(data, batchable, params, rows, outputs))
        except queue.Full:
            self.metrics.rows_for(DROPPED).inc(rows)

    def start(self) -> None:
        """In each worker, after fork: the thread that scores queued requests."""
        description = self.model.description
        self.metrics.info.labels(
            description.name or "", description.version or "", description.run_id or ""
        ).set(1)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drop (and count) what is queued; wait STOP_WAIT_SECONDS at most for the thread."""
        self._stopping = True
        dropped = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                dropped += job.rows
        if dropped:
            self.metrics.rows_for(DROPPED).inc(dropped)
        # The thread's signal to end; if a request was queued meanwhile, it ends on that.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stopping:
                if job is not None:
                    self.metrics.rows_for(DROPPED).inc(job.rows)
                return
            self.score(job)

    def score(self, job: ShadowJob) -> None:
        """Predict with the shadow and record the comparison; never raises."""
        started = time.perf_counter()
        try:
            data = self._to_frame(job.data) if job.batchable else job.data
            shadow_outputs = to_jsonable(self.model.predict(data, job.params))
        except Exception as error:
            self.metrics.predict_seconds.observe(time.perf_counter() - started)
            self.metrics.errors.inc()
            self.metrics.rows_for(FAILED).inc(job.rows)
            self._log_failure(error)
            return
        self.metrics.predict_seconds.observe(time.perf_counter() - started)
        try:
            comparison = compare_outputs(job.primary_outputs, shadow_outputs, self._labels)
        except Exception as error:  # an output shape the comparison did not foresee
            self.metrics.rows_for(FAILED).inc(job.rows)
            self._log_failure(error)
            return
        self._record(comparison)

    def _record(self, comparison: Comparison) -> None:
        metrics = self.metrics
        if comparison.rows:
            metrics.rows_for(COMPARED).inc(comparison.rows)
        if comparison.mismatched:
            metrics.rows_for(MISMATCHED).inc(comparison.mismatched)
        for (field_label, primary, shadow, agreed), count in comparison.pairs.items():
            metrics.agreement_for(field_label, primary, shadow, "true" if agreed else "false").inc(
                count
            )
        for field_label, differences in comparison.differences.items():
            histogram = metrics.difference_for(field_label)
            for difference in differences:
                histogram.observe(difference)

    def _log_failure(self, error: Exception) -> None:
        """The error's type, never its message: that may quote the input."""
        now = time.monotonic()
        self._failures_unlogged += 1
        if now - self._failure_logged_at < FAILURE_LOG_INTERVAL_SECONDS:
            return
        logger.warning(
            "the shadow model %s version %s failed with %s (%d failures since the last line)",
            self.model.description.name or self.model.description.resolved_uri,
            self.model.description.version or "n/a",
            type(error).__name__,
            self._failures_unlogged,
        )
        self._failures_unlogged = 0
        self._failure_logged_at = now
