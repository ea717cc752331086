"""A real Prometheus scrapes the real production command and evaluates our queries and rules.

Static checks cannot see evaluation errors (many-to-many matching, a label value that never
occurs) or an alert that never leaves the inactive state. Here Prometheus (the Debian
package's binary, on 127.0.0.1) scrapes Gunicorn with 2 workers every second and loads
ops/prometheus/alerts.yml; every dashboard query must evaluate, and return data unless what it
reads is legitimately absent; every rule must be healthy; stopping the server must set the
not-ready alert pending. And the real server exports every metric the static checks take
on trust (ANNOUNCED_METRICS). Every wait is bounded in time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.prometheus import JOB, Prometheus, running_prometheus
from tests.ops.promql import (
    ALERTS_PATH,
    ANNOUNCED_METRICS,
    DASHBOARD_PATH,
    analyse,
    expand_grafana_variables,
    exported_labels,
)
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo
from tests.support.production import RunningServer, start_server, stop, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

JSON = "application/json"
# A query may return nothing when it filters on these (no 5xx or shedding happened here).
_OUTCOME_LABELS = {"status", "error_code", "reason"}
_NOT_FIRING_WHEN_HEALTHY = {
    "ModelServingHighErrorRate",
    "ModelServingHighLatencyP99",
    "ModelServingNotReady",
    "ModelServingLoadSheddingSustained",
    "ModelServingLoadSheddingBurst",
    "ModelServingLatencyBurst",
    "ModelServingPredictStuck",
    "ModelServingDown",
}


@pytest.fixture
def production_server(registry: RegisteredDemo, tmp_path: Path) -> Iterator[RunningServer]:
    (tmp_path / "server").mkdir()
    # Drift is published after a few rows, so the traffic below brings its series.
    server = start_server(
        registry,
        tmp_path / "server",
        DRIFT_WINDOW_ROWS="100",
        DRIFT_MIN_ROWS="10",
        DRIFT_SAMPLE_INTERVAL_MS="0",
    )
    yield server
    server.kill()


@pytest.fixture
def prometheus_scraping(
    prometheus: str, production_server: RunningServer, tmp_path: Path
) -> Iterator[Prometheus]:
    # As in Kubernetes: Prometheus scrapes the ops listener in Gunicorn's master.
    target = production_server.ops_url.removeprefix("http://")
    with running_prometheus(prometheus, tmp_path, [target], [ALERTS_PATH]) as running:
        yield running


def _send_traffic(base_url: str) -> None:
    """Scores, a client error and probes, spread over 3 s so rates have several samples."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for second in range(3):
            for index in range(10):
                row = RISKY_ROW if index % 3 == 0 else {**VALID_ROW, "age": 25 + index}
                scored = client.post("/invocations", json={"dataframe_records": [row, row]})
                assert scored.status_code == 200, scored.text
            bad = client.post("/invocations", content=b"{", headers={"Content-Type": JSON})
            assert bad.status_code == 400
            assert client.get("/version").status_code == 200
            if second < 2:
                time.sleep(1)


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD_PATH.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in panels for t in p["targets"]]


def test_prometheus_evaluates_every_dashboard_query_and_rule_on_the_real_server(
    production_server: RunningServer, prometheus_scraping: Prometheus
) -> None:
    wait_ready(production_server)
    prom = prometheus_scraping
    ready_query = f'sum(model_ready{{job="{JOB}"}})'
    traffic_query = f'sum(rate(http_requests_total{{job="{JOB}"}}[1m])) > 0'

    def detail() -> str:
        return (
            f"{ready_query} = {prom.query(ready_query)}\n"
            f"{traffic_query} = {prom.query(traffic_query)}\n"
            f"targets: {prom.targets_health()}\n{production_server.log_tail()}"
        )

    def ready_scraped() -> bool:
        ready = prom.query(ready_query)
        return bool(ready) and float(ready[0]["value"][1]) == 2

    # Traffic only once Prometheus has scraped the ready server: a rate needs a sample
    # from before the requests, and Prometheus may start scraping seconds after it answers.
    wait_until(ready_scraped, 60, "2 ready workers scraped", detail=detail)
    _send_traffic(production_server.base_url)
    wait_until(lambda: bool(prom.query(traffic_query)), 30, "traffic scraped", detail=detail)

    exposition = httpx.get(f"{production_server.ops_url}/metrics", timeout=10).text
    with_samples = {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    missing_data = []
    for where, expr in _dashboard_queries():
        promql = expand_grafana_variables(expr, duration="1m", value=".*")
        result = prom.query(promql)  # raises on an evaluation error
        use = analyse(expr)
        may_be_empty = any(
            selector.metric not in with_samples
            or any(label in _OUTCOME_LABELS for label, _, _ in selector.matchers)
            for selector in use.selectors
        )
        if not result and not may_be_empty:
            missing_data.append(f"{where}: {promql}")
    assert missing_data == []

    groups = prom.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    document = yaml.safe_load(ALERTS_PATH.read_text())
    expected = {rule["alert"] for group in document["groups"] for rule in group["rules"]}
    assert {rule["name"] for rule in rules} == expected
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert unhealthy == {}
    active = {alert["labels"]["alertname"] for alert in prom.api("alerts")["alerts"]}
    assert active & _NOT_FIRING_WHEN_HEALTHY == set()

    # The server goes away: model_ready disappears and the not-ready alert starts pending.
    assert stop(production_server) == 0

    def not_ready_pending() -> bool:
        alerts = prom.api("alerts")["alerts"]
        return any(
            alert["labels"]["alertname"] == "ModelServingNotReady"
            and alert["labels"]["severity"] == "page"
            and alert["state"] == "pending"
            for alert in alerts
        )

    wait_until(not_ready_pending, 30, "ModelServingNotReady pending after the server stopped")


def test_the_real_server_exports_every_announced_metric_with_its_labels(
    production_server: RunningServer,
) -> None:
    """ANNOUNCED_METRICS lets the dashboard and alert checks read series the in-process app
    shows no sample of; each must really be exported, or a name misspelt there (or a
    metric never built) would pass a panel that stays empty."""
    wait_ready(production_server)
    _send_traffic(production_server.base_url)
    # Announced far past MAX_BODY_BYTES: refused at once, before any body is read.
    assert production_server.post_headers_only(100_000_000).startswith(b"HTTP/1.1 413 ")

    def exported() -> dict[str, set[str]]:
        metrics = httpx.get(f"{production_server.ops_url}/metrics", timeout=10).text
        return exported_labels(metrics)

    wait_until(
        lambda: ANNOUNCED_METRICS.keys() <= exported().keys(),
        15,
        "every announced metric exported",
        detail=lambda: f"missing: {sorted(ANNOUNCED_METRICS.keys() - exported().keys())}",
    )
    labels = exported()
    assert {name: labels[name] for name in ANNOUNCED_METRICS} == ANNOUNCED_METRICS
