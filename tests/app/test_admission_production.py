"""The admission bound through the production command: a worker whose warm-up was slow
(a busy machine, a cold model) ends up admitting what its fast predicts allow."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.runtime.predict_cost import WINDOW
from tests.app.slow_model import save_slow_model
from tests.support.clients import ClientPerThread
from tests.support.demo import VALID_ROW
from tests.support.production import StartServer, wait_ready

pytestmark = pytest.mark.slow
BODY = {"dataframe_records": [VALID_ROW]}
BOUND_LINE = re.compile(r"admission bound: (\d+) requests per worker")
CONNECTIONS = 64  # the peers bench's cell that shed most of its requests


def test_a_worker_whose_warm_up_was_slow_admits_what_its_fast_predicts_allow(
    start: StartServer, tmp_path: Path
) -> None:
    """The model's first six predicts in each process (the warm-up's) sleep 100 ms, the
    later ones do not: the warm-up sizes a bound of at most 5, which 64 connections would
    overrun. Requests one at a time raise it past 64; then 64 at once are all answered."""
    model = save_slow_model(tmp_path / "slow-start", 0.1, slow_predicts=6)
    server = start(workers=1, MODEL_URI=str(model))
    wait_ready(server)
    warm_up_bound = int(BOUND_LINE.findall(server.log_path.read_text(errors="replace"))[0])
    assert warm_up_bound <= 5
    assert server.metric("serving_admission_bound") == warm_up_bound

    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for _ in range(20):  # at most 320 requests, about a second's work
            for _ in range(WINDOW):
                assert client.post("/invocations", json=BODY).status_code == 200
            if server.metric("serving_admission_bound") >= CONNECTIONS:
                break
    assert server.metric("serving_admission_bound") >= CONNECTIONS

    with (
        ClientPerThread(fresh_connections=True) as burst,
        ThreadPoolExecutor(CONNECTIONS) as pool,
    ):
        statuses = list(
            pool.map(
                lambda _: burst.post(f"{server.base_url}/invocations", json=BODY).status_code,
                range(CONNECTIONS),
            )
        )
    assert statuses == [200] * CONNECTIONS
    assert server.metric("http_requests_rejected_total", reason="shed") == 0
    # The warm-up's bound and the rise from it were logged.
    logged = [
        int(bound) for bound in BOUND_LINE.findall(server.log_path.read_text(errors="replace"))
    ]
    assert logged[0] == warm_up_bound
    assert logged[-1] > warm_up_bound
