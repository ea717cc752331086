"""Metric labels the client cannot multiply: methods folded, every answer a route template."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.support.demo import VALID_ROW
from tests.support.metrics import metric_samples


def _requests_total(client: TestClient) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: value
        for (name, labels), value in metric_samples(client).items()
        if name == "http_requests_total"
    }


def test_unknown_methods_fold_into_one_label(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for method in ("PROPFIND", "MKCOL", "PURGE", "LOCK", "SEARCH"):
        assert client.request(method, "/invocations").status_code == 405
    totals = _requests_total(client)
    methods = {dict(labels)["method"] for labels in totals}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    other = (("method", "other"), ("route", "/invocations"), ("status", "405"))
    assert totals[other] == 5


def test_401s_and_docs_carry_their_route_template(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys="k1", docs_public=True)
    assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).status_code == 401
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    totals = _requests_total(client)
    routes = {(dict(labels)["route"], dict(labels)["status"]) for labels in totals}
    assert ("/invocations", "401") in routes
    assert ("/openapi.json", "200") in routes
    assert ("/docs", "200") in routes
    assert ("<unmatched>", "401") not in routes


def test_a_failing_model_series_exists_at_zero_for_every_scoring_route(
    make_client: Callable[..., TestClient],
) -> None:
    """So the error alerts' rate() counts a failing release's very first failures, in
    either protocol."""
    totals = _requests_total(make_client())
    failing = {labels: value for labels, value in totals.items() if dict(labels)["status"] == "500"}
    assert {dict(labels)["route"]: value for labels, value in failing.items()} == {
        "/invocations": 0.0,
        "/v2/models/{model_name}/infer": 0.0,
        "/v2/models/{model_name}/versions/{model_version}/infer": 0.0,
    }
