"""The admission bound follows what a request costs the worker's predict calls.

The warm-up sizes it first; the worker's predicts for requests then move it, by at most
MAX_STEP per estimate, never by less than DEADBAND, and never on one outlier (a median).
The sizing alone, then the real app with real models driven in-process: the micro-batched
path, the path of requests that are not batched, and a shadow whose predicts must not count.
tests/app/test_admission_production.py shows it through the production command.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.http.admission import DEADBAND, MAX_STEP, AdmissionLimit, early_shed_of
from app.main import create_app
from app.runtime.model import load_served_model
from app.runtime.predict_cost import WINDOW, PredictCost
from app.settings import Settings
from tests.app.slow_model import save_slow_model
from tests.support.demo import VALID_ROW
from tests.support.waiting import wait_ready, wait_until

BUDGET = 0.5
# A warm-up of predicts this slow sizes a bound of 15 (the peers bench's busy machine).
SLOW_WARM_UP = 0.03206
FAST_PREDICT = 0.004  # a warm predict of the demo model: a bound of 125
WARM_UP_PREDICTS = 6  # the warm-up's cold predict and its five warm ones
READY_SECONDS = 30.0


def _sized(warm_up_seconds: float) -> tuple[AdmissionLimit, PredictCost]:
    limit = AdmissionLimit(None, BUDGET)
    limit.size_from_predict(warm_up_seconds)
    return limit, PredictCost(limit.size_from_predict)


def _window(cost: PredictCost, seconds: list[float]) -> None:
    """One estimate's worth of predict calls, one request each, cycling over `seconds`."""
    for call in range(WINDOW):
        cost.record(seconds[call % len(seconds)], 1)


def test_a_slow_warm_up_followed_by_fast_predicts_raises_the_bound() -> None:
    limit, cost = _sized(SLOW_WARM_UP)
    assert limit.bound == 15
    bounds = []
    for _ in range(5):
        _window(cost, [FAST_PREDICT])
        bounds.append(limit.bound)
    # Doubling at most, up to budget / predict (125): within a tenth of it, it stays.
    assert bounds == [30, 60, 120, 120, 120]


def test_a_model_that_slows_lowers_the_bound() -> None:
    limit, cost = _sized(FAST_PREDICT)
    assert limit.bound == 125
    bounds = []
    for _ in range(5):
        _window(cost, [0.04])
        bounds.append(limit.bound)
    assert bounds == [63, 32, 16, 12, 12]  # halving at most, down to budget / predict


def test_one_outlier_does_not_move_the_bound() -> None:
    limit, cost = _sized(FAST_PREDICT)
    _window(cost, [5.0] + [FAST_PREDICT] * (WINDOW - 1))  # one call stalled for 5 s
    assert limit.bound == 125
    _window(cost, [0.002, 0.006])  # jitter around the same cost
    assert limit.bound == 125


def test_a_change_within_the_deadband_is_not_made() -> None:
    limit, cost = _sized(FAST_PREDICT)
    _window(cost, [BUDGET / (125 * (1 + DEADBAND / 2))])  # a target 5 % under the bound
    assert limit.bound == 125
    _window(cost, [0.0032])  # a target of 156, 25 % over: made
    assert limit.bound == 156


def test_micro_batched_calls_share_their_time_among_the_requests_they_answer() -> None:
    limit, cost = _sized(FAST_PREDICT)
    for _ in range(WINDOW):
        cost.record(0.008, 8)  # 8 requests in 8 ms: 1 ms each
    assert limit.bound == 250
    for _ in range(WINDOW):
        cost.record(math.inf, 8)  # a call that failed as a whole is not a cost
    assert limit.bound == 250


def test_a_fixed_bound_never_moves() -> None:
    limit = AdmissionLimit(7, BUDGET)
    cost = PredictCost(limit.size_from_predict)
    limit.size_from_predict(SLOW_WARM_UP)
    for seconds in (FAST_PREDICT, 0.0001, 1.0):
        _window(cost, [seconds])
        assert limit.bound == 7


def test_a_bound_never_sized_takes_the_first_estimate_outright() -> None:
    """A model with no input example has no warm-up: its first predicts size the bound."""
    limit = AdmissionLimit(None, BUDGET)
    cost = PredictCost(limit.size_from_predict)
    _window(cost, [0.1])
    assert limit.bound == 5


def test_the_bound_is_logged_when_it_changes_materially(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="app.http.admission"):
        limit, cost = _sized(SLOW_WARM_UP)
        for _ in range(4):
            _window(cost, [FAST_PREDICT])
        # Moves of 12 to 16 %, none a quarter from the last bound logged: made, not logged.
        for seconds, target in ((0.0037, 135), (0.0043, 116), (0.0037, 135)):
            _window(cost, [seconds])
            assert limit.bound == target
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "admission bound: 15 requests per worker (0.5 s budget / 32.06 ms per predict)",
        "admission bound: 30 requests per worker (0.5 s budget / 4.00 ms per request over "
        "recent predicts; was 15)",
        "admission bound: 60 requests per worker (0.5 s budget / 4.00 ms per request over "
        "recent predicts; was 30)",
        "admission bound: 120 requests per worker (0.5 s budget / 4.00 ms per request over "
        "recent predicts; was 60)",
    ]


@contextmanager
def _serving(model_path: Path, **settings: object) -> Iterator[tuple[TestClient, AdmissionLimit]]:
    app = create_app(Settings(**settings), model=load_served_model(str(model_path)))  # type: ignore[arg-type]
    shed = early_shed_of(app)
    assert shed is not None
    with TestClient(app) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        yield client, shed.limit


def _bound_metric(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("serving_admission_bound "):
            return float(line.split()[1])
    raise AssertionError("no serving_admission_bound sample")


def _raised_by_fast_predicts(client: TestClient, limit: AdmissionLimit, body: object) -> None:
    """Warmed up on slow predicts (a bound of at most 5), the model is quick from then on:
    a few windows of requests raise the bound, doubling at most per window."""
    warm_up_bound = limit.bound
    assert warm_up_bound <= 5
    assert _bound_metric(client) == warm_up_bound
    for _ in range(4 * WINDOW):
        assert client.post("/invocations", json=body).status_code == 200
    # Four estimates of a quick predict (about a millisecond: a budget of 0.5 s allows
    # hundreds); the bound doubles at most per estimate, and it did at least twice (a
    # busy machine would need to slow the predict past 30 ms to stop it).
    assert warm_up_bound * MAX_STEP**2 <= limit.bound <= warm_up_bound * MAX_STEP**4
    assert _bound_metric(client) == limit.bound


def test_the_micro_batched_predicts_of_a_served_model_raise_a_bound_its_warm_up_kept_low(
    tmp_path: Path,
) -> None:
    model = save_slow_model(tmp_path / "slow-start", 0.1, slow_predicts=WARM_UP_PREDICTS)
    with _serving(model) as (client, limit):
        _raised_by_fast_predicts(client, limit, {"dataframe_records": [VALID_ROW]})


def test_predicts_of_requests_that_are_not_batched_raise_it_too(tmp_path: Path) -> None:
    """A tensor model's requests are predicted in the thread pool, not micro-batched."""
    model = save_slow_model(
        tmp_path / "slow-start-tensor",
        0.1,
        slow_predicts=WARM_UP_PREDICTS,
        input_example=np.zeros((1, 3)),
    )
    with _serving(model) as (client, limit):
        _raised_by_fast_predicts(client, limit, {"inputs": [[1.0, 2.0, 3.0]]})


def test_a_fixed_bound_stays_under_traffic_and_is_exported(tmp_path: Path) -> None:
    model = save_slow_model(tmp_path / "slow-start", 0.1, slow_predicts=WARM_UP_PREDICTS)
    with _serving(model, max_concurrent_requests=3) as (client, limit):
        for _ in range(2 * WINDOW):
            assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).is_success
        assert limit.bound == 3
        assert _bound_metric(client) == 3


def test_the_shadows_predicts_do_not_size_the_served_models_bound(tmp_path: Path) -> None:
    """The served model's predicts sleep 20 ms, so they allow at most 25 requests in 0.5 s
    however fast the machine; the shadow's take about a millisecond. Each request waits for
    its shadow predict: were those counted, half the calls would be quick, and the bound
    would rise to about 48 (the median of 1 and 20 ms is 10.5 ms)."""
    served = save_slow_model(tmp_path / "served", 0.02)
    shadow = save_slow_model(tmp_path / "shadow", 0.0)
    settings = {"shadow_model_uri": str(shadow), "batching": False}  # a shadow call each
    with _serving(served, **settings) as (client, limit):
        for answered in range(1, 4 * WINDOW + 1):
            assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).is_success
            wait_until(
                lambda: _shadow_predicts(client) >= answered,  # noqa: B023 (called at once)
                10,
                "the shadow's predict",
                interval=0.005,
            )
        assert limit.bound <= math.floor(BUDGET / 0.02)


def _shadow_predicts(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("model_shadow_predict_duration_seconds_count "):
            return float(line.split()[1])
    return 0.0
