"""What the "Errors by error code" panel and the error-rate alert read must count every 5xx."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.runtime.model import ServedModel
from app.settings import Settings
from tests.support.waiting import READY_SECONDS, wait_ready


@pytest.fixture
def failing_route_client(served_model: ServedModel) -> Iterator[TestClient]:
    """The real app plus one route that raises an error no handler expects."""
    app = create_app(Settings(), model=served_model)

    async def explode() -> None:
        raise RuntimeError("an error nobody planned for")

    app.add_api_route("/ops-test/explode", explode, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        yield client


def _errors_by_code(client: TestClient) -> dict[str, float]:
    return {
        sample.labels["error_code"]: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "serving_errors_total"
    }


def test_an_unhandled_error_is_counted_and_logged_as_internal_error(
    failing_route_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    response = failing_route_client.get("/ops-test/explode")
    assert response.status_code == 500
    assert response.json() == {
        "error_code": "INTERNAL_ERROR",
        "message": "internal server error; see the server log",
    }
    access = [record for record in caplog.records if record.name == "app.access"]
    assert [record.__dict__["status"] for record in access] == [500]
    assert access[0].__dict__["error_code"] == "INTERNAL_ERROR"
    assert _errors_by_code(failing_route_client).get("INTERNAL_ERROR") == 1
