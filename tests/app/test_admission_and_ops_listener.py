"""Admission (503 before anything is spent) and the ops listener, in one process.

The real app is driven over ASGI; the ops listener is the real HTTP server on 127.0.0.1.
What needs Gunicorn (the listener in the master, forks, pod readiness) is tested in
test_production_faults.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.http.admission import FALLBACK_BOUND, AdmissionLimit, early_shed_of
from app.http.middleware import ShedLogSampler
from app.main import create_app
from app.readiness import PodReadiness, Readiness
from app.runtime.model import ServedModel
from app.server.ops_server import OpsServer
from app.server.worker import ServingProtocol
from app.settings import Settings
from tests.support.asgi import CountingApp
from tests.support.demo import VALID_ROW
from tests.support.ports import free_port
from tests.support.probes import assert_not_ready
from tests.support.uvicorn_thread import uvicorn_in_a_thread


@pytest.mark.parametrize(
    ("budget", "predict", "bound"),
    [(0.5, 0.007, 71), (2.0, 0.004, 500), (0.5, 1.5, 1), (30.0, 0.0, 30_000_000)],
)
def test_the_derived_bound_is_what_one_worker_finishes_within_its_budget(
    budget: float, predict: float, bound: int
) -> None:
    limit = AdmissionLimit(None, budget)
    assert limit.bound == FALLBACK_BOUND  # until the warm-up has timed a prediction
    limit.size_from_predict(predict)
    assert limit.bound == bound
    assert limit.bound == 1 or limit.bound * max(predict, 1e-6) <= budget + 1e-9


def test_an_explicit_bound_is_kept() -> None:
    limit = AdmissionLimit(7, 0.5)
    limit.size_from_predict(0.001)
    assert limit.bound == 7


def test_settings_cap_the_budget_at_the_request_timeout(served_model: ServedModel) -> None:
    """An admitted request must be able to finish before its own timeout."""
    settings = Settings(admission_budget_seconds=5.0, request_timeout_seconds=0.2)
    app = create_app(settings, model=served_model)
    limit = _admission_limit(app)
    limit.size_from_predict(0.01)
    assert limit.bound == math.floor(0.2 / 0.01)


def _admission_limit(app: object) -> AdmissionLimit:
    for middleware in app.user_middleware:  # type: ignore[attr-defined]
        if "limit" in middleware.kwargs:
            limit = middleware.kwargs["limit"]
            assert isinstance(limit, AdmissionLimit)
            return limit
    raise AssertionError("no admission middleware")


def test_past_the_bound_the_503_comes_before_the_body_is_read(
    served_model: ServedModel,
) -> None:
    """One request holds the only slot while its body trickles in; the next is refused
    at once, with Retry-After, the error body, a request id, and counted as shed, though
    its own body is never read."""
    asyncio.run(_shed_while_one_is_held(served_model))


async def _shed_while_one_is_held(served_model: ServedModel) -> None:
    app = create_app(Settings(max_concurrent_requests=1), model=served_model)
    release = asyncio.Event()
    body_read = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b'{"dataframe_records": '
        await release.wait()
        yield b"nope"  # ends as a 400, without touching the model

    async def never_sent_body() -> AsyncIterator[bytes]:
        body_read.set()
        yield b"{}"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        held = asyncio.create_task(
            client.post(
                "/invocations", content=held_body(), headers={"Content-Type": "application/json"}
            )
        )
        await asyncio.sleep(0.2)
        shed = await asyncio.wait_for(
            client.post(
                "/invocations",
                content=never_sent_body(),
                headers={"Content-Type": "application/json", "X-Request-ID": "shed-1"},
            ),
            timeout=5,
        )
        release.set()
        first = await asyncio.wait_for(held, timeout=10)
        metrics = (await client.get("/metrics")).text

    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.headers["x-request-id"] == "shed-1"
    assert shed.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": "this worker holds its limit of 1 requests; retry shortly",
    }
    assert not body_read.is_set(), "the refused request's body was read"
    assert first.status_code == 400
    assert 'http_requests_rejected_total{reason="shed"} 1.0' in metrics
    assert 'http_requests_total{method="POST",route="/invocations",status="503"} 1.0' in metrics


def test_the_worker_refuses_past_the_bound_before_any_layer_but_the_request_context(
    served_model: ServedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a real socket, with the production worker's protocol: the 503 never enters the
    app, yet is answered, identified and counted as any other; it does not count toward
    MAX_REQUESTS (Uvicorn's total of answered requests). A connection closed after a
    refusal closes quietly."""
    app = CountingApp(create_app(Settings(max_concurrent_requests=1), model=served_model))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=ServingProtocol, log_config=None)
    with caplog.at_level(logging.ERROR), uvicorn_in_a_thread(config) as server:
        shed, metrics = asyncio.run(_shed_over_a_socket(f"http://127.0.0.1:{port}"))
    entered = app.entered
    assert entered == ["/invocations", "/livez", "/metrics"], "a refused request entered"
    assert server.server_state.total_requests == len(entered)
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.headers["x-request-id"] == "shed-2"
    assert shed.headers["x-model-version"] == served_model.description.version
    assert shed.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert 'http_requests_rejected_total{reason="shed"} 2.0' in metrics
    assert 'http_requests_total{method="POST",route="/invocations",status="503"} 2.0' in metrics
    assert [record.getMessage() for record in caplog.records] == []


def test_requests_read_in_one_turn_of_the_loop_take_the_slots_there_are_and_no_more(
    served_model: ServedModel,
) -> None:
    """Eight scoring requests reach a worker with two slots while its loop is busy, so
    one turn reads them all: two are admitted and six refused before entering the app, as
    each takes its slot when its head is parsed, before any of their apps has run."""
    inner = create_app(Settings(max_concurrent_requests=2), model=served_model)
    loop_held = threading.Event()

    @inner.get("/busy", include_in_schema=False)
    async def busy() -> dict[str, str]:
        loop_held.set()
        time.sleep(1.0)  # holds the event loop, as a long turn does under load
        return {}

    app = CountingApp(inner)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=ServingProtocol, log_config=None)
    with uvicorn_in_a_thread(config):
        statuses = asyncio.run(_eight_in_one_turn(port, loop_held))
    assert sorted(statuses) == [400, 400, 503, 503, 503, 503, 503, 503]
    assert app.entered[9:] == ["/busy", "/invocations", "/invocations"]
    shed = early_shed_of(inner)
    assert shed is not None
    assert shed.limit.held == 0  # every slot given back


def test_a_scoring_head_that_upgrades_to_a_websocket_gives_its_slot_back(
    served_model: ServedModel,
) -> None:
    """A POST /invocations asking for a WebSocket passes the bound as its head is parsed,
    then never becomes an HTTP request for the app: Uvicorn hands the connection to its
    WebSocket protocol. Its slot is given back, or a few such requests would leave a
    worker refusing every scoring request from then on."""
    inner = create_app(Settings(max_concurrent_requests=2), model=served_model)
    port = free_port()
    config = uvicorn.Config(
        inner, host="127.0.0.1", port=port, http=ServingProtocol, log_config=None
    )
    upgrade = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with uvicorn_in_a_thread(config):
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(upgrade)
                assert connection.recv(65536).startswith(b"HTTP/1.1 ")
        # And after a request answered on the same connection, the keep-alive case.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
            assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
            connection.sendall(upgrade)
            assert connection.recv(65536).startswith(b"HTTP/1.1 ")
        shed = early_shed_of(inner)
        assert shed is not None
        assert shed.limit.held == 0
        scored = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": [VALID_ROW]},
            timeout=10,
        )
    assert scored.status_code == 200


async def _eight_in_one_turn(port: int, loop_held: threading.Event) -> list[int]:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(9)]
    for reader, writer in connections:  # each accepted and served before the loop is held
        writer.write(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
        await asyncio.wait_for(_read_answer(reader), timeout=10)
    busy_reader, busy_writer = connections[0]
    busy_writer.write(b"GET /busy HTTP/1.1\r\nHost: test\r\n\r\n")
    assert await asyncio.to_thread(loop_held.wait, 10)
    body = b'{"dataframe_records": []}'
    for _, writer in connections[1:]:
        writer.write(
            b"POST /invocations HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    await asyncio.wait_for(_read_answer(busy_reader), timeout=10)
    answers = [await asyncio.wait_for(_read_answer(r), timeout=10) for r, _ in connections[1:]]
    for _, writer in connections:
        writer.close()
    return [int(answer.split(b" ", 2)[1]) for answer in answers]


async def _shed_over_a_socket(base_url: str) -> tuple[httpx.Response, str]:
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b'{"dataframe_records": '
        await release.wait()
        yield b"nope"  # ends as a 400, without touching the model

    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        held = asyncio.create_task(
            client.post("/invocations", content=held_body(), headers=headers)
        )
        await asyncio.sleep(0.3)
        shed = await client.post(
            "/invocations", content=b"{}", headers={**headers, "X-Request-ID": "shed-2"}
        )
        await _refused_then_served_on_one_connection(base_url)
        release.set()
        assert (await held).status_code == 400
        metrics = (await client.get("/metrics")).text
    return shed, metrics


async def _refused_then_served_on_one_connection(base_url: str) -> None:
    """The refused request's body is dropped, not read as a request; the connection stays."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"dataframe_records": []}'
    writer.write(
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    refused = await asyncio.wait_for(_read_answer(reader), timeout=10)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
    served = await asyncio.wait_for(_read_answer(reader), timeout=10)
    writer.close()
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert served.startswith(b"HTTP/1.1 200 OK\r\n")


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def test_metrics_can_be_kept_off_the_main_port(served_model: ServedModel) -> None:
    client = TestClient(create_app(Settings(metrics_on_main_port=False), model=served_model))
    assert client.get("/metrics").status_code == 404
    for path in ("/ping", "/health", "/livez"):
        assert client.get(path).status_code == 200, path


@pytest.fixture
def ops_listener() -> Iterator[tuple[OpsServer, Readiness]]:
    readiness = Readiness(ready=False, reason="1 of 2 workers warmed up")
    server = OpsServer(
        "127.0.0.1",
        free_port(),
        ready=lambda: readiness,
        render_metrics=lambda: b"model_ready 1.0\n",
    )
    server.start()
    yield server, readiness
    server.stop()


def test_the_ops_listener_answers_probes_metrics_and_the_pods_readiness(
    ops_listener: tuple[OpsServer, Readiness],
) -> None:
    server, readiness = ops_listener
    host, port = server.server_address[:2]
    assert isinstance(host, str)
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
        assert_not_ready(client.get("/readyz"), "1 of 2 workers warmed up")
        readiness.ready = True
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/livez").json() == {"status": "alive"}
        for path in ("/ping", "/health"):
            assert client.get(path).text == "\n"
        metrics = client.get("/metrics")
        assert metrics.text == "model_ready 1.0\n"
        assert metrics.headers["content-type"].startswith("text/plain")
        assert client.get("/invocations").status_code == 404


def test_a_taken_ops_port_fails_at_once() -> None:
    port = free_port()
    first = OpsServer("127.0.0.1", port, ready=Readiness, render_metrics=bytes)
    try:
        with pytest.raises(OSError, match="in use"):
            OpsServer("127.0.0.1", port, ready=Readiness, render_metrics=bytes)
    finally:
        first.server_close()


def test_shed_lines_are_logged_at_most_once_a_second_with_the_count_left_out() -> None:
    sampler = ShedLogSampler(interval_seconds=1.0)
    taken = [sampler.take(now) for now in (10.0, 10.2, 10.9, 11.0, 11.5, 15.0)]
    assert taken == [0, None, None, 2, None, 1]


def test_the_pod_stays_ready_while_a_worker_is_replaced_but_not_before_all_warmed_up() -> None:
    pod = PodReadiness()
    answers = [
        pod(shutting_down=False, ready_workers=ready, workers=2) for ready in (0, 1, 2, 1, 0, 1)
    ]
    assert [answer.ready for answer in answers] == [False, False, True, True, False, True]
    assert answers[1].reason == "1 of 2 workers warmed up"
    assert pod(shutting_down=True, ready_workers=2, workers=2).reason == "shutting down"


def test_the_workers_431_is_counted_and_logged_as_any_answer(
    served_model: ServedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """A head past MAX_HEADER_BYTES is refused by the worker's protocol, before any app:
    it still gets its request id, a request metric with no route (the head was cut, its
    path is not a label) and an access line."""
    app = create_app(Settings(), model=served_model)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=ServingProtocol, log_config=None)
    with caplog.at_level(logging.INFO, logger="app.access"), uvicorn_in_a_thread(config):
        answer = asyncio.run(_oversized_head(port))
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"\r\nx-request-id: big-head-1\r\n" in answer
    assert 'http_requests_total{method="POST",route="<unmatched>",status="431"} 1.0' in metrics
    assert 'serving_errors_total{error_code="RESOURCE_LIMIT_EXCEEDED"} 1.0' in metrics
    assert 'http_requests_rejected_total{reason="too_large"} 1.0' in metrics
    lines = [r for r in caplog.records if r.name == "app.access" and r.__dict__["status"] == 431]
    assert [(r.__dict__["request_id"], r.__dict__["route"]) for r in lines] == [
        ("big-head-1", "<unmatched>")
    ]


async def _oversized_head(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nX-Request-ID: big-head-1\r\n"
        + b"X-Padding: "
        + b"a" * (70 * 1024)
        + b"\r\n\r\n"
    )
    answer = await asyncio.wait_for(_read_answer(reader), timeout=10)
    writer.close()
    return answer
