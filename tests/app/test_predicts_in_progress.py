"""The start time of the oldest predict in progress, per worker: what the stuck-predict alert
(ModelServingPredictStuck) reads. It holds the oldest start while predicts overlap, and 0
once none runs; a real request through the app shows it while its predict runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Gauge

from app.observability.metrics import PredictsInProgress
from app.runtime.model import load_served_model
from tests.app.slow_model import save_slow_model
from tests.support.demo import VALID_ROW

STARTED = "model_predict_started_timestamp_seconds"


def _tracker() -> tuple[PredictsInProgress, Callable[[], float]]:
    registry = CollectorRegistry()
    gauge = Gauge(STARTED, "oldest start", registry=registry)
    return PredictsInProgress(gauge), lambda: registry.get_sample_value(STARTED) or 0.0


def test_the_gauge_holds_the_oldest_start_until_every_predict_ended() -> None:
    tracker, value = _tracker()
    assert value() == 0.0
    before = time.time()
    first = tracker.begin()
    oldest = value()
    assert before <= oldest <= time.time()
    time.sleep(0.01)
    second = tracker.begin()
    assert value() == oldest  # the older one still runs
    third = tracker.begin()
    tracker.end(second)  # a younger one ending changes nothing
    assert value() == oldest
    tracker.end(first)
    assert oldest < value() <= time.time()  # now the third's start
    tracker.end(third)
    assert value() == 0.0


def test_a_request_shows_its_predict_start_while_it_runs_and_0_after(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(load_served_model(str(save_slow_model(tmp_path / "slow", seconds=1.0))))

    def started() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(STARTED + " "):
                return float(line.split()[1])
        raise AssertionError(f"{STARTED} is not exported")

    assert started() == 0.0
    sent = time.time()
    answers: list[int] = []
    request = threading.Thread(
        target=lambda: answers.append(
            client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).status_code
        )
    )
    request.start()
    seen = 0.0
    deadline = time.monotonic() + 10
    while not seen and request.is_alive() and time.monotonic() < deadline:
        seen = started()
        time.sleep(0.05)
    request.join(timeout=30)
    assert answers == [200]
    assert sent <= seen <= time.time()
    assert started() == 0.0
