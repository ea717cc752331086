"""Tracing with the SDK's in-memory exporter, the stage histogram and Server-Timing.

The app is the real one around the demo model (micro-batching on: its rows are
independent); spans are read after the client closes, when the worker's lifespan has
flushed its batch processor, as a worker does on shutdown.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from app.http.routes import INLINE_PARSE_MAX_BYTES
from app.http.tracing import TracingMiddleware, tracing_configured
from app.main import create_app
from app.observability.stages import STAGES
from app.runtime.model import ServedModel
from app.settings import Settings
from tests.support.asgi import score_concurrently
from tests.support.demo import VALID_ROW, RegisteredDemo
from tests.support.waiting import READY_SECONDS, wait_ready

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
# Input values no span may carry: distinctive numbers, and the text column's value.
MARKED_ROW = {**VALID_ROW, "income": 81234.5678, "loan_amount": 17654.321}
MARKERS = ("81234.5678", "17654.321", str(VALID_ROW["employment_status"]))


@contextmanager
def traced_app(served_model: ServedModel) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    """A started app exporting to memory; its spans are all exported once the block ends.
    Every concurrent request of a test is admitted, however slow this machine's warm-up
    (which sizes the default bound)."""
    exporter = InMemorySpanExporter()
    settings = Settings(max_concurrent_requests=64)
    app = create_app(settings, model=served_model, span_exporter=exporter)
    with TestClient(app) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        yield client, exporter


def _server_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is SpanKind.SERVER]


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> dict[str, ReadableSpan]:
    return {
        span.name: span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    }


def test_a_request_continues_traceparent_with_one_child_span_per_stage(
    served_model: ServedModel, registry: RegisteredDemo
) -> None:
    with traced_app(served_model) as (client, exporter):
        response = client.post(
            "/invocations",
            json={"dataframe_records": [MARKED_ROW, VALID_ROW]},
            headers={"traceparent": TRACEPARENT},
        )
        assert response.status_code == 200
        assert client.get("/readyz").status_code == 200  # probes are not traced
    spans = exporter.get_finished_spans()
    [server] = _server_spans(spans)
    assert format_trace_id(server.context.trace_id) == TRACE_ID
    assert server.parent is not None
    assert format_span_id(server.parent.span_id) == PARENT_ID
    assert server.name == "POST /invocations"
    assert dict(server.attributes or {}) == {
        "model.name": registry.name,
        "model.version": registry.version,
        "http.route": "/invocations",
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "request.rows": 2,
        "request.content_type": "application/json",
    }
    children = _children(spans, server)
    assert set(children) == set(STAGES)
    ordered = sorted(children.values(), key=lambda span: span.start_time or 0)
    assert [span.name for span in ordered] == list(STAGES)
    for earlier, later in itertools.pairwise(ordered):
        assert (earlier.end_time or 0) <= (later.start_time or 0), "stages overlap"
    assert (server.start_time or 0) <= (ordered[0].start_time or 0)
    assert (ordered[-1].end_time or 0) <= (server.end_time or 0)
    assert all(span.context.trace_id == server.context.trace_id for span in ordered)
    # A lone request's predict served only it: no links.
    assert not children["predict"].links


def test_a_refused_request_carries_its_error_code_and_no_span_holds_an_input_value(
    served_model: ServedModel,
) -> None:
    bad_row = {**MARKED_ROW, "num_late_payments": 2.5}  # a float in an integer column
    with traced_app(served_model) as (client, exporter):
        refused = client.post("/invocations", json={"dataframe_records": [bad_row]})
        assert refused.status_code == 422
        served = client.post("/invocations", json={"dataframe_records": [MARKED_ROW]})
        assert served.status_code == 200
    spans = exporter.get_finished_spans()
    refused, served = _server_spans(spans)
    assert refused.attributes is not None
    assert refused.attributes["error.code"] == "INVALID_PARAMETER_VALUE"
    assert refused.attributes["http.response.status_code"] == 422
    assert set(_children(spans, refused)) == {"read", "parse"}  # refused while validating
    assert "error.code" not in (served.attributes or {})
    everything = "".join(span.to_json() for span in spans)
    for marker in MARKERS:
        assert marker not in everything, f"an input value ({marker}) is in a span"


def test_a_combined_predict_span_links_to_every_request_it_served(
    served_model: ServedModel,
) -> None:
    bodies = [{"dataframe_records": [{**VALID_ROW, "age": 21 + index}]} for index in range(24)]
    with traced_app(served_model) as (client, exporter):
        responses = score_concurrently(client, bodies)
        assert [r.status_code for r in responses] == [200] * len(bodies)
    spans = exporter.get_finished_spans()
    servers = {span.context.span_id: span for span in _server_spans(spans)}
    assert len(servers) == len(bodies)
    predicts = [_children(spans, server)["predict"] for server in servers.values()]
    combined = [span for span in predicts if span.links]
    assert combined, "no request shared its predict call with another"
    for predict in combined:
        linked = {link.context.span_id for link in predict.links}
        assert linked <= servers.keys(), "a link points at no request of this test"
        assert predict.parent is not None
        assert predict.parent.span_id in linked
        assert predict.attributes is not None
        assert predict.attributes["batch.requests"] == len(linked) > 1
        # Every request of the group records the same group.
        for span_id in linked:
            peer = _children(spans, servers[span_id])["predict"]
            assert {link.context.span_id for link in peer.links} == linked


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(1, id="parsed-on-the-event-loop"),
        # Past INLINE_PARSE_MAX_BYTES the body is parsed in a thread: still timed.
        pytest.param(400, id="parsed-in-a-thread"),
    ],
)
def test_server_timing_lists_the_stages_of_that_request_only_when_asked(
    make_client: Callable[..., TestClient], rows: int
) -> None:
    body = {"dataframe_records": [VALID_ROW] * rows}
    assert len(json.dumps(body)) > INLINE_PARSE_MAX_BYTES or rows == 1
    assert "server-timing" not in make_client().post("/invocations", json=body).headers
    response = make_client(server_timing=True).post("/invocations", json=body)
    header = response.headers["server-timing"]
    entries = re.findall(r"([a-z_]+);dur=(\d+\.\d{3})", header)
    assert [stage for stage, _ in entries] == list(STAGES), header
    assert sum(float(ms) for _, ms in entries) > 0


def test_stage_histogram_counts_each_stage_of_each_request(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()

    def counts() -> dict[str, float]:
        text = client.get("/metrics").text
        found = re.findall(r'model_stage_duration_seconds_count\{stage="(\w+)"\} (\S+)', text)
        return {stage: float(value) for stage, value in found}

    before = counts()
    assert set(before) == set(STAGES), "every stage is exported before its first sample"
    for _ in range(3):
        assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).is_success
    after = counts()
    assert {stage: after[stage] - before[stage] for stage in STAGES} == dict.fromkeys(STAGES, 3)


def test_tracing_stays_off_unless_configured(
    make_client: Callable[..., TestClient],
) -> None:
    """No tracing middleware at all without OTEL_* configuration: nothing runs per request."""
    assert not tracing_configured(Settings())
    assert not tracing_configured(
        Settings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318", otel_sdk_disabled=True)
    )
    assert tracing_configured(Settings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318"))
    assert tracing_configured(Settings(otel_traces_exporter="otlp"))
    app = make_client().app
    assert all(m.cls is not TracingMiddleware for m in app.user_middleware)  # type: ignore[attr-defined]
