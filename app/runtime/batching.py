"""Adaptive micro-batching: concurrent requests in one worker share one predict call.

Most of a small prediction's cost is per call (pyfunc's schema enforcement, the pipeline's
set-up), not per row, so combining requests is where throughput is. One consumer per
worker takes whatever is queued when the previous predict ends, up to a row bound. When
requests queued up during that predict (concurrent load), it first waits a bounded moment
for more; otherwise it waits for nothing, so a lone request pays no batching delay.
Predicts run one at a time, in a single thread per worker: one native math thread, no GIL
contention between predicts, and the event loop stays free to read the next requests.

A lone request whose predict is known to be quick runs on the event loop instead: the hop
to the predict thread and back is two thread wake-ups, a large share of a small predict.
Lone: for the last second, no request came in while another was waiting
or being predicted (under concurrent load the thread lets the loop read the next requests
during a predict, which batching needs). Known to be quick: the last predict took at most
`inline_max_seconds` and had at least as many rows. A slow model never runs inline (its
first predict is measured on the thread), and a quick one holds the loop about that long.
A brief predict (the last one of at least as many rows took at most BRIEF_SECONDS, timed
where it ran) runs on the loop under concurrent load too: there the hop cost as much CPU
as the predict, and the loop is held no longer than one of its turns takes anyway.

Requests with different params are predicted apart. If a combined call fails, each of
its requests is predicted on its own, so one bad request cannot fail its neighbours.
The version's business rules run here too, once over the group's rows rather than once
per request on the event loop; each request is still judged, and refused, on its own rows.
A request whose caller gave up (timeout) is dropped before it is predicted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from app.observability.stages import BATCH_WAIT, PREDICT, StageTimes
from app.protocol.frames import ColumnData, ModelInput
from app.runtime.guardrails import RequestGuardrails, Verdict

logger = logging.getLogger(__name__)

# A request is lone when none came in while another was pending for this long.
_LONE_AFTER_SECONDS = 1.0
# A predict this brief runs on the loop under concurrent load too: the hop to the thread
# and back costs about as much, and the loop is held no longer than a turn takes anyway.
BRIEF_SECONDS = 0.001


@dataclass
class PendingRequest:
    data: ModelInput
    rows: int
    params: dict[str, Any] | None
    future: asyncio.Future[Any] = field(repr=False)
    times: StageTimes | None = field(default=None, repr=False)

    @property
    def params_key(self) -> bytes:
        """Equal for equal params; None and {} differ (a model may tell them apart)."""
        return orjson.dumps(self.params, option=orjson.OPT_SORT_KEYS)


# predict(frame, params) -> the JSON-able output (a list, one entry per row, for tabular
# models); raises a ServingError on failure.
PredictRows = Callable[[pd.DataFrame, dict[str, Any] | None], Any]
# Called per combined call with its row count (a metrics hook).
ObserveBatch = Callable[[int], None]
# Called on the event loop after each predict call with its seconds (timed where it ran)
# and the number of requests it answered (app.runtime.predict_cost).
ObserveCost = Callable[[float, int], None]


class MicroBatcher:
    def __init__(
        self,
        predict_rows: PredictRows,
        to_frame: Callable[[ModelInput], pd.DataFrame],
        *,
        enabled: bool,
        max_batch_rows: int,
        max_wait_seconds: float,
        inline_max_seconds: float,
        observe_batch: ObserveBatch,
        guardrails: RequestGuardrails | None = None,
        brief_seconds: float = BRIEF_SECONDS,
        observe_cost: ObserveCost | None = None,
    ) -> None:
        self._predict_rows = predict_rows
        self._guardrails = guardrails
        self._to_frame = to_frame
        self._enabled = enabled
        self._max_rows = max_batch_rows
        self._max_wait = max_wait_seconds
        self._inline_max = inline_max_seconds
        self._brief = min(brief_seconds, inline_max_seconds)
        # The last predict's rows and seconds (timed where it ran); none yet: never inline.
        self._last_rows, self._last_seconds = 0, math.inf
        self._predicting = False
        self._last_overlap = -math.inf  # when a request last came in while another was pending
        self._observe_batch = observe_batch
        self._observe_cost = observe_cost
        self._queue: deque[PendingRequest] = deque()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._consumer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the consumer on the running loop (each worker, after fork)."""
        self._consumer = asyncio.get_running_loop().create_task(self._consume())

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(
        self,
        data: ModelInput,
        rows: int,
        params: dict[str, Any] | None,
        times: StageTimes | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a validated request; the future resolves to its rows' outputs. With `times`,
        its batch_wait and predict stages are timed here."""
        loop = asyncio.get_running_loop()
        if self._queue or self._predicting:
            self._last_overlap = loop.time()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(PendingRequest(data, rows, params, future, times))
        self._wake.set()
        return future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        concurrent = False  # did requests queue up while the last batch was predicted?
        while True:
            await self._wake.wait()
            if (
                concurrent
                and self._enabled
                and self._max_wait > 0
                and self._queued_rows() < self._max_rows
            ):
                # Under concurrent load the answers just sent bring their clients' next
                # requests within a millisecond or two: wait for them to join this batch.
                # (Never when batching is off: nothing could join, the wait is pure delay.)
                await asyncio.sleep(self._max_wait)
            batch = self._take_batch()
            if not self._queue:
                self._wake.clear()
            inline = self._runs_inline(batch, loop.time())
            self._predicting = True
            for group in _group_by_params(batch):
                _lap_each(group, BATCH_WAIT)
                try:
                    if inline:
                        results, elapsed = self._predict_timed(group)
                    else:
                        results, elapsed = await loop.run_in_executor(
                            self._executor, self._predict_timed, group
                        )
                except Exception as error:  # never leave a caller waiting forever
                    logger.exception("the batch consumer failed")
                    results, elapsed = [error] * len(group), math.inf
                self._last_rows = sum(request.rows for request in group)
                self._last_seconds = elapsed
                if self._observe_cost is not None:
                    self._observe_cost(elapsed, len(group))
                for request, result in zip(group, results, strict=True):
                    if request.future.done():
                        continue
                    if request.times is not None:
                        request.times.lap(PREDICT)
                    if isinstance(result, BaseException):
                        request.future.set_exception(result)
                    else:
                        request.future.set_result(result)
            self._predicting = False
            concurrent = bool(self._queue)

    def _runs_inline(self, batch: list[PendingRequest], now: float) -> bool:
        if sum(request.rows for request in batch) > self._last_rows:
            return False  # not known to be quick at this size
        if self._last_seconds <= self._brief:
            return True
        return (
            len(batch) == 1
            and now - self._last_overlap > _LONE_AFTER_SECONDS
            and self._last_seconds <= self._inline_max
        )

    def _queued_rows(self) -> int:
        return sum(request.rows for request in self._queue)

    def _take_batch(self) -> list[PendingRequest]:
        batch: list[PendingRequest] = []
        rows = 0
        while self._queue:
            request = self._queue[0]
            if request.future.done():  # the caller timed out or went away
                self._queue.popleft()
                continue
            if batch and (not self._enabled or rows + request.rows > self._max_rows):
                break
            batch.append(self._queue.popleft())
            rows += request.rows
        return batch

    def _predict_timed(self, group: list[PendingRequest]) -> tuple[list[Any], float]:
        """The group's results, and how long predicting them took where they ran (the hop
        to the thread and back is not the model's time)."""
        started = time.perf_counter()
        results = self._predict_group(group)
        return results, time.perf_counter() - started

    def _predict_group(self, group: list[PendingRequest]) -> list[Any]:
        """Runs in the predict thread: the version's business rules over the group's rows
        at once, then one predict call for the requests they admit (one per request on
        failure), then the rules on the answers."""
        guardrails = self._guardrails
        if guardrails is None:
            return self._predict_admitted(group, None)
        table = join_inputs([request.data for request in group], self._to_frame)
        verdicts = guardrails.judge_inputs(table, [request.rows for request in group])
        refusals = [verdict.refusal for verdict in verdicts]
        admitted = [
            (request, verdict)
            for request, verdict in zip(group, verdicts, strict=True)
            if verdict.refusal is None
        ]
        answers = iter(
            self._predict_admitted(
                [request for request, _ in admitted],
                [verdict for _, verdict in admitted],
                # The table judged is the one to predict unless a request was left out.
                table if len(admitted) == len(group) else None,
            )
        )
        return [next(answers) if refusal is None else refusal for refusal in refusals]

    def _predict_admitted(
        self,
        group: list[PendingRequest],
        verdicts: list[Verdict] | None,
        table: ModelInput | None = None,
    ) -> list[Any]:
        """One call for the group, or one per request on failure; with `verdicts`, the
        output rules judge the answers (an answer an enforced rule refuses is its error).
        `table`: the group's rows already joined, when they are."""
        if len(group) > 1:
            try:
                outputs = self._predict_combined(group, verdicts, table)
            except Exception:
                logger.info(
                    "a combined predict of %d requests failed; scoring them apart", len(group)
                )
            else:
                if outputs is not None:
                    return outputs
        if verdicts is None:
            return [self._predict_alone(request) for request in group]
        return [
            self._predict_alone(request, verdict)
            for request, verdict in zip(group, verdicts, strict=True)
        ]

    def _predict_combined(
        self,
        group: list[PendingRequest],
        verdicts: list[Verdict] | None,
        table: ModelInput | None,
    ) -> list[Any] | None:
        if table is None:
            table = join_inputs([request.data for request in group], self._to_frame)
        frame = self._to_frame(table)
        outputs = self._predict_rows(frame, group[0].params)
        self._observe_batch(len(frame))
        if not isinstance(outputs, list) or len(outputs) != len(frame):
            return None  # the model's output is not one entry per row: score apart
        shares = [request.rows for request in group]
        if verdicts is None:
            return split_rows(outputs, shares)
        assert self._guardrails is not None
        self._guardrails.judge_outputs(table, outputs, shares, verdicts)
        return [
            verdict.refusal or share
            for verdict, share in zip(verdicts, split_rows(outputs, shares), strict=True)
        ]

    def _predict_alone(self, request: PendingRequest, verdict: Verdict | None = None) -> Any:
        try:
            outputs = self._predict_rows(self._to_frame(request.data), request.params)
        except Exception as error:
            return error
        self._observe_batch(request.rows)
        if verdict is not None:
            assert self._guardrails is not None
            self._guardrails.judge_outputs(request.data, outputs, [request.rows], [verdict])
            return verdict.refusal or outputs
        return outputs


def _lap_each(group: list[PendingRequest], stage: str) -> None:
    """End `stage` for every timed request of the group; a shared predict call records
    the group's requests on each, so a trace can link them."""
    timed = [request.times for request in group if request.times is not None]
    for times in timed:
        times.lap(stage)
        if len(timed) > 1:
            times.batch = timed


def _group_by_params(batch: list[PendingRequest]) -> list[list[PendingRequest]]:
    groups: dict[bytes, list[PendingRequest]] = {}
    for request in batch:
        groups.setdefault(request.params_key, []).append(request)
    return list(groups.values())


def combine_inputs(
    inputs: list[ModelInput], to_frame: Callable[[ModelInput], pd.DataFrame]
) -> pd.DataFrame:
    """One frame for the group."""
    return to_frame(join_inputs(inputs, to_frame))


def join_inputs(
    inputs: list[ModelInput], to_frame: Callable[[ModelInput], pd.DataFrame]
) -> ModelInput:
    """The group's rows as one table: column lists are joined before any DataFrame is
    built; a lone input is itself."""
    first = inputs[0]
    if len(inputs) == 1:
        return first
    if isinstance(first, dict) and all(
        isinstance(data, dict) and data.keys() == first.keys() for data in inputs
    ):
        joined: ColumnData = {name: [] for name in first}
        for data in inputs:
            assert isinstance(data, dict)
            for name, values in data.items():
                joined[name].extend(values)
        return joined
    return pd.concat([to_frame(data) for data in inputs], ignore_index=True)


def split_rows(outputs: list[Any], rows: list[int]) -> list[list[Any]]:
    """A combined answer (one entry per row) cut back into each request's share."""
    shares = []
    offset = 0
    for count in rows:
        shares.append(outputs[offset : offset + count])
        offset += count
    return shares
