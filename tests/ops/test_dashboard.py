"""The Grafana dashboard: loads, queries only what the app exports, and is valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.promql import (
    DASHBOARD_PATH,
    analyse,
    expand_grafana_variables,
    query_problems,
    run_promtool,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24

# What the issue asks the dashboard to show, and a series that shows it.
REQUIRED_SIGNALS = {
    "request rate by route and status": "http_requests_total",
    "latency percentiles": "http_request_duration_seconds_bucket",
    "requests in flight": "http_requests_in_flight",
    "predict latency": "model_predict_duration_seconds_bucket",
    "rows per request": "model_request_rows_bucket",
    "predictions by counted field": "model_predictions_total",
    "model name and version": "model_info",
    "ready workers": "model_ready",
    "drift per feature": "model_feature_drift_psi",
    "rejected requests": "http_requests_rejected_total",
    "time per request stage, stacked": "model_stage_duration_seconds_sum",
}


def _load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those folded into collapsed rows."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in _panels(dashboard) if panel["type"] != "row"]


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title + refId, PromQL) of every query of every panel."""
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in _query_panels(dashboard)
        for target in panel["targets"]
    ]


def test_dashboard_has_a_stable_uid_a_title_and_no_instance_id() -> None:
    dashboard = _load()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]), "Grafana uids: 40 chars max"
    assert dashboard["title"].strip()
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    # An `id` belongs to one Grafana database: importing a file with one overwrites a stranger.
    assert dashboard.get("id") is None
    assert dashboard["time"]["from"].startswith("now-")


def test_every_panel_and_query_uses_the_prometheus_datasource_variable() -> None:
    dashboard = _load()
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _query_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    # No datasource uid of somebody's Grafana may be baked in anywhere.
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD_PATH.read_text()))
    assert uids <= {dashboard["uid"], "${datasource}", "-- Grafana --"}


def test_the_job_variable_lists_jobs_that_export_model_info() -> None:
    variables = {v["name"]: v for v in _load()["templating"]["list"]}
    job = variables["job"]
    assert job["datasource"] == DATASOURCE
    assert job["definition"] == "label_values(model_info, job)"
    assert job["query"]["query"] == job["definition"]
    assert job["allValue"] == ".*"


def test_panel_ids_are_unique_and_panels_fit_the_grid_without_overlapping() -> None:
    panels = _panels(_load())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_has_a_title_a_description_and_distinct_queries() -> None:
    for panel in _query_panels(_load()):
        assert panel["title"].strip()
        assert panel["description"].strip(), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids, f"{panel['title']} has no query"
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_every_query_reads_only_metrics_labels_and_routes_the_app_exports(
    exported_metrics: dict[str, set[str]], route_templates: set[str]
) -> None:
    """A renamed metric, label or route turns a panel blank: that must fail here instead."""
    problems = {
        where: found
        for where, expr in _queries(_load())
        if (found := query_problems(expr, exported_metrics, route_templates))
    }
    assert problems == {}


def test_the_dashboard_shows_every_signal_the_issue_asks_for() -> None:
    shown = set().union(*(analyse(expr).metrics for _, expr in _queries(_load())))
    missing = {signal: m for signal, m in REQUIRED_SIGNALS.items() if m not in shown}
    assert missing == {}


def test_request_latency_panel_shows_p50_p95_and_p99() -> None:
    quantiles = {
        match
        for _, expr in _queries(_load())
        if "http_request_duration_seconds_bucket" in expr
        for match in re.findall(r"histogram_quantile\((0\.\d+)", expr)
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles


def test_every_query_is_valid_promql_for_prometheus_itself(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (Grafana variables expanded) as a recording rule."""
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expand_grafana_variables(expr)}
        for index, (_, expr) in enumerate(_queries(_load()))
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(http_request_total[5m])", "metric 'http_request_total' is not exported"),
        ('sum(model_ready{pod="a"})', "model_ready has no label 'pod'"),
        ('http_requests_total{route="/predict"}', "route '/predict' is no route of the app"),
        ("sum by (status_code) (http_requests_total)", "grouping by 'status_code'"),
    ],
)
def test_the_query_check_catches_a_wrong_metric_label_or_route(
    expr: str, problem: str, exported_metrics: dict[str, set[str]], route_templates: set[str]
) -> None:
    """The check above is only worth something if it can fail."""
    found = query_problems(expr, exported_metrics, route_templates)
    assert any(line.startswith(problem) for line in found), found


def test_the_stage_panel_stacks_each_stage_under_the_request_latency_line() -> None:
    [panel] = [
        panel
        for panel in _query_panels(_load())
        if any("model_stage_duration_seconds_sum" in t["expr"] for t in panel["targets"])
    ]
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    stages, latency = panel["targets"]
    assert "by (stage)" in stages["expr"]
    assert stages["legendFormat"] == "{{stage}}"
    [override] = panel["fieldConfig"]["overrides"]
    assert override["matcher"]["options"] == latency["legendFormat"]
    assert {"id": "custom.stacking", "value": {"mode": "none", "group": "A"}} in override[
        "properties"
    ]
