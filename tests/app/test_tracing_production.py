"""Tracing and stage timings through the production command: Gunicorn, 2 workers, preload.

Spans travel over OTLP/HTTP to a real receiver started here; each worker starts its own
exporter after fork, so both workers' spans must arrive. One server serves both tests.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.stages import STAGES
from tests.app.otlp_receiver import OtlpReceiver, ReceivedSpan, running_receiver
from tests.support.clients import ClientPerThread
from tests.support.demo import VALID_ROW, RegisteredDemo
from tests.support.production import RunningServer, start_server, stop, wait_ready

pytestmark = pytest.mark.slow

SERVICE_NAME = "credit-risk-traced"
SERVER_KIND = 2  # SPAN_KIND_SERVER in the OTLP proto


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_server(
    registry: RegisteredDemo, tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[RunningServer]:
    server = start_server(
        registry,
        tmp_path_factory.mktemp("traced"),
        MAX_CONCURRENT_REQUESTS="64",
        SERVER_TIMING="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME=SERVICE_NAME,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s rather than 5 s
    )
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)
        server.kill()


def _post(base_url: str, trace_id: str, parent_id: str) -> httpx.Response:
    """One request on a fresh connection, so Gunicorn's workers share the requests."""
    return httpx.post(
        f"{base_url}/invocations",
        json={"dataframe_records": [VALID_ROW]},
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Request-ID": trace_id},
        timeout=30,
    )


def _wait_for_spans(
    receiver: OtlpReceiver, trace_ids: set[str], seconds: float = 20.0
) -> list[ReceivedSpan]:
    """Until a server span and its six stage spans arrived for every trace; bounded."""
    deadline = time.monotonic() + seconds
    while True:
        spans = [span for span in receiver.snapshot() if span.trace_id in trace_ids]
        if len(spans) >= len(trace_ids) * (1 + len(STAGES)) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def test_spans_of_both_workers_reach_a_real_otlp_receiver_continuing_traceparent(
    traced_server: RunningServer, receiver: OtlpReceiver
) -> None:
    sent: dict[str, str] = {}  # trace id -> the caller's parent span id
    pids: set[object] = set()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):  # bounded: rounds of 16 until both workers have answered
            batch = {uuid.uuid4().hex: uuid.uuid4().hex[:16] for _ in range(16)}
            responses = list(pool.map(lambda t: _post(traced_server.base_url, *t), batch.items()))
            assert [r.status_code for r in responses] == [200] * len(batch)
            sent.update(batch)
            spans = _wait_for_spans(receiver, set(batch))
            pids |= {span.resource.get("process.pid") for span in spans}
            if len(pids) >= 2:
                break

    spans = _wait_for_spans(receiver, set(sent))
    servers = {span.trace_id: span for span in spans if span.kind == SERVER_KIND}
    assert servers.keys() == sent.keys()
    worker_pids = {span.resource["process.pid"] for span in servers.values()}
    assert len(worker_pids) == 2, "spans did not come from both workers"
    assert traced_server.process.pid not in worker_pids  # never the master
    for trace_id, server in servers.items():
        assert server.parent_span_id == sent[trace_id]
        assert server.name == "POST /invocations"
        assert server.resource["service.name"] == SERVICE_NAME
        assert server.attributes["http.response.status_code"] == 200
        assert server.attributes["request.rows"] == 1
        children = {
            span.name: span
            for span in spans
            if span.trace_id == trace_id and span.parent_span_id == server.span_id
        }
        assert set(children) == set(STAGES)
        assert all(
            server.start_ns <= c.start_ns <= c.end_ns <= server.end_ns for c in children.values()
        )

    # The request's log line carries the ids of its server span.
    logged = {
        str(line["request_id"]): line
        for line in traced_server.log_lines()
        if line.get("message") == "request" and line.get("request_id") in sent
    }
    assert logged.keys() == sent.keys()
    for trace_id, line in logged.items():
        assert line["trace_id"] == trace_id
        assert line["span_id"] == servers[trace_id].span_id


def _stage_and_request_totals(ops_url: str) -> dict[str, float]:
    """Sums and counts of the stage histogram and of /invocations latency, all workers."""
    text = httpx.get(f"{ops_url}/metrics", timeout=10).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "model_stage_duration_seconds" and sample.name.endswith(
                ("_sum", "_count")
            ):
                totals[f"{sample.labels['stage']}{sample.name[len(family.name) :]}"] = sample.value
            elif (
                family.name == "http_request_duration_seconds"
                and sample.labels.get("route") == "/invocations"
                and sample.name.endswith(("_sum", "_count"))
            ):
                totals[f"request{sample.name[len(family.name) :]}"] = sample.value
    return totals


def test_stage_times_add_up_to_no_more_than_the_request_latency_under_load(
    traced_server: RunningServer,
) -> None:
    """A bounded burst (240 requests, 24 at a time): per request (its Server-Timing against
    the latency the client saw) and in /metrics (the stage sums against the latency sum)."""
    before = _stage_and_request_totals(traced_server.ops_url)

    def post(client: ClientPerThread) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = client.post(
            f"{traced_server.base_url}/invocations",
            json={"dataframe_records": [VALID_ROW] * 3},
            timeout=30,
        )
        return response, time.perf_counter() - started

    with ClientPerThread() as client, ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda _: post(client), range(240)))
    after = _stage_and_request_totals(traced_server.ops_url)

    for response, latency in results:
        assert response.status_code == 200
        timings = re.findall(r"([a-z_]+);dur=([\d.]+)", response.headers["server-timing"])
        assert [stage for stage, _ in timings] == list(STAGES)
        assert sum(float(ms) for _, ms in timings) / 1000 <= latency

    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    assert delta["request_count"] == len(results)
    for stage in STAGES:
        assert delta[f"{stage}_count"] == len(results), stage
    stage_seconds = sum(delta[f"{stage}_sum"] for stage in STAGES)
    assert 0 < stage_seconds <= delta["request_sum"]
    assert delta["predict_sum"] > 0
