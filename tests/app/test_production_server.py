"""The production command, for real: Gunicorn, 2 Uvicorn workers, preload, the XGBoost model.

Native thread pools are not fork-safe, so this is the test that proves the preloaded
XGBoost model answers from forked workers. Every wait here is bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT, VALID_ROW, RegisteredDemo, free_port

PRODUCTION_COMMAND = [
    str(Path(sys.executable).with_name("gunicorn")),
    "--config",
    "python:app.gunicorn_conf",
    "app.main:create_app()",
]

pytestmark = pytest.mark.slow


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    ops_url: str  # the ops listener (probes, /metrics) in the master

    def kill(self) -> None:
        """SIGKILL the master and its workers (the whole process group), then reap."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a traceback line is allowed; it is not a JSON record
        return lines


def start_server(
    registry: RegisteredDemo, tmp_path: Path, *, workers: int = 2, **env: str
) -> RunningServer:
    port, ops_port = free_port(), free_port()
    log_path = tmp_path / "server.log"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OMP_NUM_THREADS", "PROMETHEUS_MULTIPROC_DIR"}
    }
    environment.update(
        MLFLOW_TRACKING_URI=registry.tracking_uri,
        MODEL_URI=f"models:/{registry.name}/Production",
        PORT=str(port),
        OPS_PORT=str(ops_port),
        WORKERS=str(workers),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    environment.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            PRODUCTION_COMMAND,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group, so kill() reaches the workers
        )
    return RunningServer(
        process, f"http://127.0.0.1:{port}", log_path, f"http://127.0.0.1:{ops_port}"
    )


def wait_ready(server: RunningServer, seconds: float = 90.0) -> None:
    """Until the pod is ready: every worker warmed up (the ops listener's /readyz)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.ops_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {seconds} s:\n{server.log_path.read_text()[-3000:]}")


def stop(server: RunningServer, seconds: float = 40.0) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        server.kill()
        raise


@pytest.fixture
def server(registry: RegisteredDemo, tmp_path: Path) -> Iterator[RunningServer]:
    # 50 concurrent requests must all be admitted, however slow this machine's warm-up
    # predictions (which size the default bound) happen to be.
    running = start_server(registry, tmp_path, MAX_CONCURRENT_REQUESTS="64")
    yield running
    running.kill()


def _post_one(client: httpx.Client, base_url: str, index: int) -> tuple[str, int, str]:
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
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    with httpx.Client(limits=limits) as client, ThreadPoolExecutor(max_workers=50) as pool:
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


def test_a_model_that_cannot_load_stops_the_server_with_exit_3(
    registry: RegisteredDemo, tmp_path: Path
) -> None:
    broken = start_server(registry, tmp_path, MODEL_URI="models:/no-such-model/Production")
    assert broken.process.wait(timeout=60) == 3
    critical = [line for line in broken.log_lines() if line.get("level") == "CRITICAL"]
    assert len(critical) == 1
    assert "no-such-model" in str(critical[0]["message"])


def test_a_server_without_model_uri_stops_with_exit_3(
    registry: RegisteredDemo, tmp_path: Path
) -> None:
    """The server has no model of its own: no MODEL_URI is a loud, quick failure."""
    unset = start_server(registry, tmp_path, MODEL_URI="")
    assert unset.process.wait(timeout=60) == 3
    critical = [line for line in unset.log_lines() if line.get("level") == "CRITICAL"]
    assert len(critical) == 1
    assert "MODEL_URI is not set" in str(critical[0]["message"])
