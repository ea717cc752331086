"""Faults and load through the real production command on 127.0.0.1.

Metrics across workers (also after a worker dies), load shedding, timeouts, drain on
SIGTERM and a worker killed under load. Every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench.loadgen import RESULT_PREFIX
from tests.support import PROJECT_ROOT
from tests.support.clients import ClientPerThread
from tests.support.demo import VALID_ROW
from tests.support.probes import assert_not_ready
from tests.support.production import RunningServer, StartServer, stop, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
BODY = {"dataframe_records": [VALID_ROW]}


def _post_many(base_url: str, count: int, connections: int = 16) -> list[int]:
    with (
        ClientPerThread(fresh_connections=True) as client,
        ThreadPoolExecutor(connections) as pool,
    ):
        return list(
            pool.map(
                lambda _: client.post(f"{base_url}/invocations", json=BODY).status_code,
                range(count),
            )
        )


def test_metrics_count_every_request_across_workers_also_after_one_dies(
    start: StartServer, tmp_path: Path
) -> None:
    # 16 connections may all reach one worker: a bound sized on a busy machine must not shed.
    server = start(MAX_CONCURRENT_REQUESTS="64")
    wait_ready(server)
    assert _post_many(server.base_url, 150) == [200] * 150
    answered = {"route": "/invocations", "status": "200"}
    assert server.metric("http_requests_total", on_main_port=True, **answered) == 150

    victim = min(server.worker_pids())
    os.kill(victim, signal.SIGKILL)
    server.wait_for_workers(2, exclude={victim}, seconds=30)
    wait_ready(server)
    assert _post_many(server.base_url, 50) == [200] * 50
    # The dead worker's counts stay in its files: nothing is lost or counted twice.
    assert server.metric("http_requests_total", on_main_port=True, **answered) == 200


def test_overload_is_503_with_retry_after_and_probes_still_answer(
    start: StartServer, tmp_path: Path
) -> None:
    server = start(predict_seconds=1.5, workers=1, MAX_CONCURRENT_REQUESTS="3")
    # The ops listener answers from the master before the worker has warmed up (seconds,
    # with this model): the pod is not ready yet, and says why.
    not_ready = _ops_answer(server, "/readyz", seconds=60)
    assert_not_ready(not_ready, "0 of 1 workers warmed up")
    wait_ready(server)
    probe_statuses: list[int] = []

    def probe_while_loaded() -> None:
        time.sleep(0.5)
        for _ in range(5):
            probe_statuses.append(httpx.get(f"{server.base_url}/readyz", timeout=5).status_code)
            for path in ("/readyz", "/livez", "/metrics"):
                probe_statuses.append(httpx.get(f"{server.ops_url}{path}", timeout=5).status_code)

    prober = threading.Thread(target=probe_while_loaded)
    prober.start()
    with ClientPerThread(fresh_connections=True) as client, ThreadPoolExecutor(10) as pool:
        pending = pool.map(
            lambda _: client.post(f"{server.base_url}/invocations", json=BODY), range(10)
        )
        server.wait_in_flight(3, seconds=1.4)  # three hold the slots for 1.5 s
        headers_only = server.post_headers_only(1_000_000)
        responses = list(pending)
    prober.join(timeout=30)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 3
    assert statuses.count(503) == 7
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.headers["retry-after"] == "1"
    assert len(shed.headers["x-request-id"]) == 32
    assert shed.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": "this worker holds its limit of 3 requests; retry shortly",
    }
    # Refused without its body: it announced 1 MB and sent none, and got its 503.
    assert headers_only.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nretry-after: 1\r\n" in headers_only.lower()
    assert probe_statuses == [200] * 20
    metrics = httpx.get(f"{server.ops_url}/metrics", timeout=10).text
    assert 'http_requests_rejected_total{reason="shed"} 8.0' in metrics
    assert 'http_requests_total{method="POST",route="/invocations",status="503"} 8.0' in metrics


def _ops_answer(server: RunningServer, path: str, seconds: float) -> httpx.Response:
    """The ops listener's first answer, waiting for it to come up; bounded in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(f"{server.ops_url}{path}", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise
            time.sleep(0.05)


def test_a_request_past_its_deadline_is_504_with_the_error_body(
    start: StartServer, tmp_path: Path
) -> None:
    server = start(predict_seconds=2.0, workers=1, REQUEST_TIMEOUT_SECONDS="0.5")
    wait_ready(server, seconds=90)
    started = time.monotonic()
    response = httpx.post(f"{server.base_url}/invocations", json=BODY, timeout=30)
    assert time.monotonic() - started < 1.8
    assert response.status_code == 504
    assert response.json() == {
        "error_code": "DEADLINE_EXCEEDED",
        "message": "no answer within 0.5 s (REQUEST_TIMEOUT_SECONDS); the request was abandoned",
    }


def test_sigterm_lets_40_in_flight_requests_finish_then_exits_0(
    start: StartServer, tmp_path: Path
) -> None:
    server = start(
        predict_seconds=1.0,
        GRACEFUL_TIMEOUT_SECONDS="20",
        MAX_CONCURRENT_REQUESTS="40",  # a 1 s predict would derive a bound of 1
    )
    wait_ready(server)

    def received() -> float:
        """Scoring requests the workers hold or have answered."""
        answered = server.metric("http_requests_total", route="/invocations")
        return server.metric("http_requests_in_flight") + answered

    before = received()
    with ClientPerThread(fresh_connections=True) as client, ThreadPoolExecutor(40) as pool:
        futures = [
            pool.submit(client.post, f"{server.base_url}/invocations", json=BODY) for _ in range(40)
        ]
        wait_until(lambda: received() >= before + 40, 10, "40 requests received", interval=0.05)
        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        draining = _readyz_while_draining(server)
        statuses = [future.result(timeout=30).status_code for future in futures]
    assert statuses == [200] * 40
    # While it drains, the pod says it is not ready, so no new traffic is sent its way.
    assert draining == "not ready: shutting down"
    assert stop(server, seconds=25) == 0
    assert time.monotonic() - terminated < 20


def _readyz_while_draining(server: RunningServer, seconds: float = 5.0) -> str:
    """The ops listener's /readyz message once the master has begun shutting down."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{server.ops_url}/readyz", timeout=2)
        except httpx.TransportError:
            return "the master is gone"
        if answer.status_code == 503:
            return str(answer.json()["message"])
        time.sleep(0.05)
    return "still ready"


def test_a_worker_killed_under_load_costs_at_most_its_in_flight_requests(
    start: StartServer, tmp_path: Path
) -> None:
    server = start()
    wait_ready(server)
    connections = 8
    statuses: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 6

    def steady_load() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(2000):  # bounded in count as well as in time
                if time.monotonic() > stop_at:
                    return
                try:
                    status = client.post(f"{server.base_url}/invocations", json=BODY).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=steady_load) for _ in range(connections)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    victim = min(server.worker_pids())
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    replacement = server.wait_for_workers(2, exclude={victim}, seconds=15)
    assert time.monotonic() - killed_at < 15
    for thread in threads:
        thread.join(timeout=20)
    failures = [s for s in statuses if s != 200]
    assert len(statuses) > 100
    assert len(failures) <= connections, f"{len(failures)} failed of {len(statuses)}"
    assert len(replacement) == 2
    assert httpx.post(f"{server.base_url}/invocations", json=BODY, timeout=10).status_code == 200


def test_workers_stop_by_themselves_when_the_master_is_killed(
    start: StartServer, tmp_path: Path
) -> None:
    """A SIGKILLed master cannot stop its workers; they notice and leave within seconds."""
    server = start()
    wait_ready(server)
    workers = server.worker_pids()
    assert len(workers) == 2
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
        15,
        f"workers {sorted(workers)} gone",
    )


def test_a_short_overload_answers_only_200_or_503_and_probes_never_fail(
    start: StartServer, tmp_path: Path
) -> None:
    """The overload bench in small (bench/overload.py has the figures): an open-loop
    load far past a tight bound, 2 workers, 5 s. Only 200s and 503s come back, and the
    kubelet's and Prometheus' requests to the ops listener all answer 200 within the
    probes' 2 s timeout. No timing is asserted beyond that generous bound."""
    server = start(MAX_CONCURRENT_REQUESTS="4")
    wait_ready(server)
    body_file = tmp_path / "body.json"
    body_file.write_text(json.dumps(BODY))
    port = server.base_url.rsplit(":", 1)[1]
    probes: list[tuple[str, int]] = []
    done = threading.Event()

    def probe() -> None:
        paths = ("/livez", "/readyz", "/metrics", "/ping")
        for turn in range(2000):  # bounded in count as well as by the load's end
            if done.is_set():
                return
            path = paths[turn % len(paths)]
            try:
                status = httpx.get(f"{server.ops_url}{path}", timeout=2).status_code
            except httpx.TransportError:
                status = 0
            probes.append((path, status))
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        load = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                f"--port={port}",
                f"--body-file={body_file}",
                "--duration=5",
                "--rate=800",
                "--max-connections=256",
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
    finally:
        done.set()
        prober.join(timeout=10)
    (line,) = [x for x in load.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    result = json.loads(line.removeprefix(RESULT_PREFIX))
    assert set(result["by_status"]) == {"200", "503"}, result["by_status"]
    assert result["errors"] == 0
    assert len(probes) > 20
    assert [p for p in probes if p[1] != 200] == []
