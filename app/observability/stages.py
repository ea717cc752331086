"""Where a scoring request's time goes: its stages, timed once, for three readers.

One `StageTimes` per request holds perf_counter stamps of each stage (read, parse,
validate, batch_wait, predict, encode), taken where the work happens (app.runtime.scoring,
app.runtime.batching). The middleware here starts it, feeds `model_stage_duration_seconds{stage}`
and, when SERVER_TIMING is on, the response's `Server-Timing` header; app.http.tracing turns
the same stamps into spans. Stages never overlap, so they add up to no more than the
request's latency; what lies between them (routing, waiting for the event loop) is in none.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import ServingMetrics

READ = "read"  # receiving the request body, from the app's first read to its last chunk
PARSE = "parse"  # decoding JSON, CSV or Parquet into columns or a table
VALIDATE = "validate"  # checking values, params and size against the model's signature
BATCH_WAIT = "batch_wait"  # queued for the micro-batcher until its predict call starts
PREDICT = "predict"  # the model's predict call (the combined one when batched)
ENCODE = "encode"  # predictions to the JSON response body
STAGES = (READ, PARSE, VALIDATE, BATCH_WAIT, PREDICT, ENCODE)


class StageTimes:
    """The stages of one request as (stage, started, ended) perf_counter seconds.

    `lap(stage)` ends `stage` now and starts the next one here; `resume()` starts the next
    one now, after a gap that belongs to no stage. Cheap: two float stamps per stage.
    """

    __slots__ = ("_since", "batch", "clock_origin", "perf_origin", "stages", "trace_context")

    def __init__(self) -> None:
        # The wall clock at the request's start: spans need epoch nanoseconds.
        self.perf_origin = time.perf_counter()
        self.clock_origin = time.time_ns()
        self._since = self.perf_origin
        self.stages: list[tuple[str, float, float]] = []
        # Set by the micro-batcher: every request of the predict call this one shared.
        self.batch: list[StageTimes] | None = None
        # Set by app.http.tracing when a span is recorded for this request: its span context.
        self.trace_context: Any = None

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages.append((stage, self._since, now))
        self._since = now

    def resume(self) -> None:
        self._since = time.perf_counter()

    @property
    def last_stage(self) -> str | None:
        return self.stages[-1][0] if self.stages else None

    def epoch_ns(self, perf_seconds: float) -> int:
        """A perf_counter stamp of this request on the wall clock, in nanoseconds."""
        return self.clock_origin + int((perf_seconds - self.perf_origin) * 1e9)


_current: ContextVar[StageTimes | None] = ContextVar("stage_times", default=None)


def current_stage_times() -> StageTimes | None:
    """The stages of the request being handled (None outside one: warm-up, tests)."""
    return _current.get()


class StageTimingMiddleware:
    """Starts each HTTP request's `StageTimes`, then records its stages in the histogram and,
    when asked for, in a `Server-Timing` header (milliseconds, W3C Server Timing syntax)."""

    def __init__(self, app: ASGIApp, *, metrics: ServingMetrics, server_timing: bool) -> None:
        self.app = app
        self.server_timing = server_timing
        self.observers = {stage: metrics.stage_seconds.labels(stage).observe for stage in STAGES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        times = StageTimes()
        token = _current.set(times)
        read_started = False

        async def timed_receive() -> Message:
            nonlocal read_started
            if not read_started:
                read_started = True
                times.resume()
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                times.lap(READ)
            return message

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start" and times.stages:
                message["headers"] = [*message.get("headers", []), server_timing(times)]
            await send(message)

        try:
            await self.app(scope, timed_receive, send_with_timing if self.server_timing else send)
        finally:
            _current.reset(token)
            for stage, started, ended in times.stages:
                self.observers[stage](ended - started)


def server_timing(times: StageTimes) -> tuple[bytes, bytes]:
    value = ", ".join(
        f"{stage};dur={(ended - started) * 1000:.3f}" for stage, started, ended in times.stages
    )
    return b"server-timing", value.encode("ascii")
