"""A shadow model: a candidate scored beside the served model, off the request path.

After the served model answers a request, the scorer offers the request's input and that
answer here. A share of them (SHADOW_SAMPLE_RATE) goes into a bounded queue, without
waiting: a full queue drops the work and counts it. One thread per worker, started after
fork, predicts each with the shadow model and compares the two answers
(app.runtime.comparison) into the model_shadow_* metrics. When the shadow model's rows
are independent (the rule the served model's micro-batching follows), the thread takes a
request, then whatever else comes within LINGER_SECONDS (or up to BATCH_MAX_ROWS rows), and
predicts them in one call: a predict's cost is mostly per call for many models, so the
shadow costs one predict per batch rather than one per request, at any load. Nobody waits
for that linger: the client has been answered. The client's answer, status and
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
from app.runtime.batching import combine_inputs, split_rows
from app.runtime.comparison import BoundedLabels, Comparison, compare_outputs
from app.runtime.model import ServedModel

logger = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 1.0
# How long the thread waits for more requests to predict with the one it took (combined
# predicts only). Longer means fewer, larger calls and older comparisons; the requests
# waiting are out of the queue (they never make it drop), at most BATCH_MAX_ROWS rows.
LINGER_SECONDS = 0.02
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
        combine: bool = False,
        max_batch_rows: int = 512,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self._to_frame = to_frame
        self._sample_rate = sample_rate
        self._combine = combine
        self._max_batch_rows = max_batch_rows
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
            jobs = self._take_more(job)
            # stop() sets _stopping before its signal: taken while lingering, the jobs are
            # dropped as the queued ones are.
            if self._stopping:
                self.metrics.rows_for(DROPPED).inc(sum(taken.rows for taken in jobs))
                return
            for group in _groups(jobs, self._combine):
                if len(group) == 1:
                    self.score(group[0])
                else:
                    self.score_together(group)

    def _take_more(self, first: ShadowJob) -> list[ShadowJob]:
        """The first job and, when requests may be combined, those that come within
        LINGER_SECONDS, up to max_batch_rows rows, or until the signal to end."""
        jobs, rows = [first], first.rows
        deadline = time.monotonic() + LINGER_SECONDS
        while self._combine and rows < self._max_batch_rows:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is None:
                break
            jobs.append(job)
            rows += job.rows
        return jobs

    def score(self, job: ShadowJob) -> None:
        """Predict one request with the shadow and record the comparison; never raises."""
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
        self._compare(job, shadow_outputs)

    def score_together(self, jobs: list[ShadowJob]) -> None:
        """Predict queued requests in one call (the shadow's rows are independent), as the
        served model's micro-batcher does, and compare each request's share of the answer.
        A call that fails, or an answer that is not one value per row, is done again one
        request at a time, so each request's outcome is its own. Never raises."""
        started = time.perf_counter()
        try:
            frame = combine_inputs([job.data for job in jobs], self._to_frame)
            outputs = to_jsonable(self.model.predict(frame, jobs[0].params))
        except Exception:
            outputs = None
        self.metrics.predict_seconds.observe(time.perf_counter() - started)
        if not isinstance(outputs, list) or len(outputs) != sum(job.rows for job in jobs):
            for job in jobs:
                self.score(job)
            return
        for job, share in zip(jobs, split_rows(outputs, [job.rows for job in jobs]), strict=True):
            self._compare(job, share)

    def _compare(self, job: ShadowJob, shadow_outputs: Any) -> None:
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


def _groups(jobs: list[ShadowJob], combine: bool) -> list[list[ShadowJob]]:
    """Consecutive jobs one predict call may take: tabular, with the same params."""
    groups: list[list[ShadowJob]] = []
    for job in jobs:
        previous = groups[-1][-1] if groups else None
        if (
            combine
            and previous is not None
            and job.batchable
            and previous.batchable
            and job.params == previous.params
        ):
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
