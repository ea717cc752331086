"""Reading an app's /metrics in tests."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


def metric_samples(client: TestClient) -> dict[tuple[str, Labels], float]:
    """Every sample of the in-process app's /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
