"""The production command, for real: Gunicorn, 2 Uvicorn workers, preload, the XGBoost model.

Native thread pools are not fork-safe, so this is the test that proves the preloaded
XGBoost model answers from forked workers. Every wait here is bounded in time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.clients import ClientPerThread
from tests.support.demo import VALID_ROW, RegisteredDemo
from tests.support.production import RunningServer, StartServer, stop, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture
def server(start: StartServer) -> RunningServer:
    # 50 concurrent requests must all be admitted, however slow this machine's warm-up
    # predictions (which size the default bound) happen to be.
    return start(MAX_CONCURRENT_REQUESTS="64")


def _post_one(client: ClientPerThread, base_url: str, index: int) -> tuple[str, int, str]:
    request_id = f"concurrency-{index}"
    response = client.post(
        f"{base_url}/invocations",
        json={"dataframe_records": [{**VALID_ROW, "age": 21 + index % 50}]},
        headers={"X-Request-ID": request_id},
        timeout=30,
    )
    return request_id, response.status_code, response.json()["predictions"][0]["risk_level"]


def test_preloaded_xgboost_model_serves_concurrent_requests_from_two_workers(
    server: RunningServer, registry: RegisteredDemo
) -> None:
    wait_ready(server)
    with (
        ClientPerThread(fresh_connections=True) as client,
        ThreadPoolExecutor(max_workers=50) as pool,
    ):
        results = list(pool.map(lambda i: _post_one(client, server.base_url, i), range(200)))
    assert [status for _, status, _ in results] == [200] * 200
    assert {level for _, _, level in results} <= {"low", "medium", "high"}

    version = httpx.get(f"{server.base_url}/version", timeout=5).json()
    assert version["version"] == registry.version

    assert stop(server) == 0

    lines = server.log_lines()
    ours = {f"concurrency-{i}" for i in range(200)}
    answered_by = {line["pid"] for line in lines if line.get("request_id") in ours}
    assert len([line for line in lines if line.get("request_id") in ours]) == 200
    assert len(answered_by) == 2, f"requests were answered by {answered_by}"
    loads = [line for line in lines if str(line.get("message", "")).startswith("model loaded")]
    assert len(loads) == 1
    assert loads[0]["pid"] == server.process.pid
    assert server.process.pid not in answered_by
    for pid in answered_by:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the master"


@pytest.mark.parametrize(
    ("model_uri", "reason"),
    [("models:/no-such-model/Production", "no-such-model"), ("", "MODEL_URI is not set")],
    ids=["unknown-model", "no-model-uri"],
)
def test_a_model_that_cannot_load_stops_the_server_with_exit_3(
    start: StartServer, model_uri: str, reason: str
) -> None:
    """No model, no server: an unknown model or no MODEL_URI is a loud, quick failure."""
    broken = start(MODEL_URI=model_uri)
    assert broken.process.wait(timeout=60) == 3
    critical = [line for line in broken.log_lines() if line.get("level") == "CRITICAL"]
    assert len(critical) == 1
    assert reason in str(critical[0]["message"])
