"""A lone request runs on the event loop only when its predict is known to be quick."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pandas as pd

from app.runtime.batching import MicroBatcher


class ThreadRecordingModel:
    """A real predict function that notes which thread ran each call, and can be slow."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.seconds = 0.0

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None) -> list[float]:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return [float(value) * 2 for value in frame["x"]]


def _batcher(
    model: ThreadRecordingModel, enabled: bool, max_wait_seconds: float, inline_max_seconds: float
) -> MicroBatcher:
    """A started batcher around the model (call inside the running loop). Brief: within
    20 ms, so that a predict sleeping 0 s is brief even on a loaded machine."""
    batcher = MicroBatcher(
        model.predict,
        pd.DataFrame,
        enabled=enabled,
        max_batch_rows=64,
        max_wait_seconds=max_wait_seconds,
        inline_max_seconds=inline_max_seconds,
        observe_batch=lambda rows: None,
        brief_seconds=0.02,
    )
    batcher.start()
    return batcher


def _score_one_at_a_time(
    model: ThreadRecordingModel,
    requests: list[tuple[int, float]],
    inline_max_seconds: float,
    first_two_together: bool = False,
) -> list[list[float]]:
    """Each (rows, predict seconds) request alone, one after the other, as at concurrency 1;
    or the first two sent together, as under concurrent load."""

    async def run() -> list[list[float]]:
        batcher = _batcher(model, True, 0.002, inline_max_seconds)
        answers = []
        try:
            if first_two_together:
                first = batcher.submit({"x": [0]}, 1, None)
                answers.append(await asyncio.wait_for(batcher.submit({"x": [0]}, 1, None), 10))
                answers.insert(0, await first)
            for rows, seconds in requests:
                model.seconds = seconds
                data = {"x": list(range(rows))}
                answers.append(await asyncio.wait_for(batcher.submit(data, rows, None), 10))
        finally:
            await batcher.stop()
        return answers

    return asyncio.run(run())


def test_quick_lone_requests_skip_the_thread_once_a_predict_of_their_size_was_quick() -> None:
    model = ThreadRecordingModel()
    requests = [(1, 0.0), (1, 0.0), (3, 0.0), (3, 0.0), (2, 0.0)]
    answers = _score_one_at_a_time(model, requests, inline_max_seconds=0.05)
    assert answers == [[0.0], [0.0], [0.0, 2.0, 4.0], [0.0, 2.0, 4.0], [0.0, 2.0]]
    loop_thread = threading.main_thread().name
    on_loop = [name == loop_thread for name in model.threads]
    # First call: nothing known, so the thread. Then 1 row after a quick 1-row predict: the
    # loop; 3 rows after 1: the thread; 3 after 3 and 2 after 3: the loop.
    assert on_loop == [False, True, False, True, True]
    assert all(
        name.startswith("predict")
        for name, inline in zip(model.threads, on_loop, strict=True)
        if not inline
    )


def test_a_slow_predict_sends_the_next_request_back_to_the_thread() -> None:
    model = ThreadRecordingModel()
    requests = [(1, 0.0), (1, 0.2), (1, 0.0), (1, 0.0)]
    _score_one_at_a_time(model, requests, inline_max_seconds=0.05)
    loop_thread = threading.main_thread().name
    # The slow second call ran inline (it was not known to be slow); the one after it not.
    assert [name == loop_thread for name in model.threads] == [False, True, False, True]


def test_zero_bound_always_predicts_on_the_thread() -> None:
    model = ThreadRecordingModel()
    _score_one_at_a_time(model, [(1, 0.0)] * 4, inline_max_seconds=0.0)
    assert all(name.startswith("predict") for name in model.threads)
    assert len(model.threads) == 4


def test_requests_after_concurrent_ones_keep_the_thread_for_a_while() -> None:
    model = ThreadRecordingModel()
    model.seconds = 0.03  # quick enough for a lone request (within 0.2 s), not brief
    answers = _score_one_at_a_time(model, [(1, 0.03)] * 3, 0.2, first_two_together=True)
    assert answers == [[0.0]] * 5
    # The two sent together came in while one was pending: for the next second every
    # request is predicted on the thread, which keeps the loop free to read new ones.
    assert all(name.startswith("predict") for name in model.threads)
    assert len(model.threads) >= 4  # the first two in one call or two, then three alone


def test_brief_predicts_stay_on_the_loop_under_concurrent_load() -> None:
    """A brief predict (app.runtime.batching.BRIEF_SECONDS) costs about what the hop costs."""
    model = ThreadRecordingModel()
    answers = _score_one_at_a_time(model, [(1, 0.0)] * 3, 0.05, first_two_together=True)
    assert answers == [[0.0]] * 5
    loop_thread = threading.main_thread().name
    on_loop = [name == loop_thread for name in model.threads]
    assert on_loop[0] is False  # nothing known yet: the thread
    assert on_loop[-3:] == [True, True, True]  # after concurrent ones, yet on the loop


def test_a_brief_bound_never_exceeds_the_inline_bound() -> None:
    """INLINE_PREDICT_MAX_MS=0 keeps every predict on the thread, brief ones too."""
    model = ThreadRecordingModel()
    _score_one_at_a_time(model, [(1, 0.0)] * 3, 0.0, first_two_together=True)
    assert all(name.startswith("predict") for name in model.threads)


def test_with_batching_off_concurrent_requests_never_wait_for_a_batch() -> None:
    """The batch wait lets concurrent requests join one predict; with batching off nothing
    can join, so a request queued behind another must not pay it (it once capped a
    non-batching model at one predict per wait, 2 ms by default)."""
    model = ThreadRecordingModel()

    async def run() -> list[list[float]]:
        # The wait, paid even once, outlasts the test's timeout below.
        batcher = _batcher(model, False, max_wait_seconds=60.0, inline_max_seconds=0.05)
        try:
            pending = [batcher.submit({"x": [n]}, 1, None) for n in range(8)]
            return await asyncio.wait_for(asyncio.gather(*pending), 20)
        finally:
            await batcher.stop()

    assert asyncio.run(run()) == [[float(n * 2)] for n in range(8)]
    assert len(model.threads) == 8  # one predict per request: batching stayed off
