"""Fixtures of the ops checks: what a real app exports, and promtool."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from starlette.routing import BaseRoute

from app.observability.metrics import ShadowMetrics
from app.runtime.model import ServedModel
from model_wrapper.packaging import DEMO_RULES_FILE
from tests.ops.promql import ANNOUNCED_METRICS, exported_labels, find_tool
from tests.support.demo import VALID_ROW


@pytest.fixture(scope="session")
def guarded_client(make_client: Callable[..., TestClient], served_model: ServedModel) -> TestClient:
    """The demo model with the business rules it ships (as `train --register` attaches)."""
    rules = DEMO_RULES_FILE.read_text()
    description = dataclasses.replace(served_model.description, guardrails_text=rules)
    model = ServedModel(served_model.pyfunc_model, description, served_model.serving_input)
    return make_client(model)


@pytest.fixture(scope="session")
def exported_metrics(client: TestClient, guarded_client: TestClient) -> dict[str, set[str]]:
    """Series name -> label names the real app exports (plus the announced ones).

    The app is the test suite's real one (demo model, real registry); one valid and one
    invalid scoring request first, so the labelled counters have samples and labels. The
    demo with its rules attached adds the guardrail series (an accepted and a refused row).
    """
    minor = {**VALID_ROW, "age": 15}
    assert guarded_client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).is_success
    assert (
        guarded_client.post("/invocations", json={"dataframe_records": [minor]}).status_code == 422
    )
    guarded = exported_labels(guarded_client.get("/metrics").text)
    assert client.post("/invocations", json={"dataframe_records": [VALID_ROW]}).status_code == 200
    bad = client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    response = client.get("/metrics")
    assert response.status_code == 200
    exported = exported_labels(response.text)
    for name, label_names in guarded.items():
        exported.setdefault(name, set()).update(label_names)
    for name, shadow_labels in shadow_metrics_exported().items():
        exported.setdefault(name, set()).update(shadow_labels)
    for name, labels in ANNOUNCED_METRICS.items():
        exported.setdefault(name, set()).update(labels)
    return exported


def shadow_metrics_exported() -> dict[str, set[str]]:
    """What a server with a shadow model adds (app.runtime.shadow), from its metrics class
    after one comparison: the suite's app has no shadow, so it exports none of them."""
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry)
    metrics.info.labels("name", "2", "run").set(1)
    metrics.rows_for("compared").inc()
    metrics.errors.inc()
    metrics.agreement_for("label", "a", "b", "false").inc()
    metrics.difference_for("score").observe(0.1)
    metrics.predict_seconds.observe(0.01)
    return exported_labels(generate_latest(registry).decode())


@pytest.fixture(scope="session")
def route_templates(client: TestClient) -> set[str]:
    """Every route template the app answers, as the `route` label carries it.

    Routers included in the app are listed in its OpenAPI document (FastAPI includes them
    lazily, so `app.http.routes` does not show them); the document's own routes are not in it.
    """
    documented = set(client.get("/openapi.json").json()["paths"])
    routes: list[BaseRoute] = client.app.routes  # type: ignore[attr-defined]
    plain = {str(route.path) for route in routes if hasattr(route, "path")}
    return documented | plain | {"<unmatched>"}


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return find_tool("prometheus")
