"""/metrics counts by route template and status; one JSON log line per request, no values."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.demo import VALID_ROW
from tests.support.metrics import metric_samples

SECRET_INCOME = 987654.321


def test_requests_are_counted_by_route_template_method_and_status(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    for _ in range(3):
        assert client.post("/invocations", json={"data": [VALID_ROW, VALID_ROW]}).status_code == 200
    client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
    client.get("/no/such/path")
    samples = metric_samples(client)
    ok = ("http_requests_total", (("method", "POST"), ("route", "/invocations"), ("status", "200")))
    bad = (
        "http_requests_total",
        (("method", "POST"), ("route", "/invocations"), ("status", "400")),
    )
    unmatched = (
        "http_requests_total",
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
    )
    assert samples[ok] == 3
    assert samples[bad] == 1
    assert samples[unmatched] == 1
    assert samples[("serving_errors_total", (("error_code", "BAD_REQUEST"),))] == 1
    assert samples[("model_request_rows_count", ())] == 3
    assert samples[("model_request_rows_sum", ())] == 6

    def latency(status_class: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        labels = (("method", "POST"), ("route", "/invocations"), ("status_class", status_class))
        return ("http_request_duration_seconds_count", labels)

    # Answered and refused requests are timed apart: a fast 400 does not hide a slow 200.
    assert samples[latency("2xx")] == 3
    assert samples[latency("4xx")] == 1
    levels = {
        labels: v for (name, labels), v in samples.items() if name == "model_predictions_total"
    }
    assert sum(levels.values()) == 6
    assert samples[("model_ready", ())] == 1
    info = [labels for (name, labels), v in samples.items() if name == "model_info" and v == 1]
    assert dict(info[0])["name"] == "credit-risk-scoring"


def test_one_log_line_per_request_with_identity_and_no_input_values(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    row = {**VALID_ROW, "income": SECRET_INCOME}
    client.post("/invocations", json={"data": [row]}, headers={"X-Request-ID": "log-test-1"})
    client.post(
        "/invocations", json={"data": [{**row, "age": "x"}]}, headers={"X-Request-ID": "log-test-2"}
    )
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert [getattr(r, "request_id", None) for r in lines] == ["log-test-1", "log-test-2"]
    # The access fields are the records' `extra` attributes.
    first, second = (vars(line) for line in lines)
    assert (first["route"], first["status"], first["rows"], first["method"]) == (
        "/invocations",
        200,
        1,
        "POST",
    )
    assert first["duration_ms"] > 0
    assert (second["status"], second["error_code"]) == (422, "INVALID_PARAMETER_VALUE")
    everything = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert str(SECRET_INCOME) not in everything
    assert not re.search(r"987654", everything)


def test_probes_are_logged_only_when_asked(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    client = make_client(log_probes=True)
    caplog.clear()
    client.get("/livez")
    assert [vars(r)["route"] for r in caplog.records if r.name == "app.access"] == ["/livez"]


def test_probes_are_not_logged_when_healthy(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    for path in ("/livez", "/readyz", "/ping", "/health", "/metrics"):
        client.get(path)
    assert [r for r in caplog.records if r.name == "app.access"] == []
