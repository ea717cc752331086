"""The canary AnalysisTemplate, run on real components: it passes a sound canary and fails a
canary that answers 5xx and one whose predictions shift while it answers 200.

One real Prometheus (Debian's binary, 127.0.0.1, 1 s scrapes) scrapes four real servers, each
the production command with 1 worker: the stable on model version N and three canaries on
N+1..N+3 (tests/ops/canary_models.py). Every server gets the same applicants, as stable and
canary pods get the same live traffic behind one Service. Then every metric of the template
rendered by `kubectl kustomize k8s/overlays/production-canary` is run for each canary the way
Argo Rollouts runs it (tests/ops/argo_analysis.py), with the arguments the Rollout's analysis
step passes plus the ones this set-up needs (where Prometheus is, the stable's version, a
1 m window, latency bounds for a shared machine). Traffic and every wait are bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from registry_scripts.demo_data import LABEL, make_credit_dataset
from tests.conftest import RegisteredDemo
from tests.deploy.manifests import find, render_overlay
from tests.ops.argo_analysis import (
    ERROR,
    FAILED,
    SUCCESSFUL,
    ConditionError,
    MetricRun,
    evaluate_condition,
    measurement_phase,
    metric_problems,
    prometheus_result,
    resolve_args,
    run_metric,
)
from tests.ops.canary_models import ROLES
from tests.ops.prometheus import JOB, Prometheus, running_prometheus
from tests.ops.promql import DASHBOARD_PATH, expand_grafana_variables, query_problems
from tests.support.processes import run_module
from tests.support.production import RunningServer, start_server, wait_ready
from tests.support.waiting import wait_until

CANARIES = ("good", "failing", "skewed")
REQUESTS_PER_SERVER = 120
ROWS_PER_REQUEST = 4
TRAFFIC_SECONDS = 12.0  # spread the requests over this long at least, so rates have samples
ERROR_METRICS = {"canary-error-ratio", "canary-error-ratio-vs-stable"}
LATENCY_METRICS = {"canary-latency-p99", "canary-latency-p99-vs-stable"}
SHIFT_METRIC = "canary-prediction-shift"


@pytest.fixture(scope="module")
def canary_registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("canary-registry")
    made = run_module("tests.ops.canary_models", str(root))
    registry: dict[str, str] = json.loads(made.strip().splitlines()[-1])
    return registry


@pytest.fixture(scope="module")
def servers(
    canary_registry: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    running: dict[str, RunningServer] = {}
    try:
        for role in ROLES:
            version = canary_registry[role]
            demo = RegisteredDemo(
                canary_registry["tracking_uri"], "credit-risk-scoring", version, ""
            )
            running[role] = start_server(
                demo,
                tmp_path_factory.mktemp(f"server-{role}"),
                workers=1,
                MODEL_URI=f"models:/credit-risk-scoring/{version}",
            )
        for server in running.values():
            wait_ready(server, seconds=120)
        yield running
    finally:
        for server in running.values():
            server.kill()


@pytest.fixture(scope="module")
def prometheus_server(
    prometheus: str, servers: dict[str, RunningServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    targets = [server.base_url.removeprefix("http://") for server in servers.values()]
    with running_prometheus(prometheus, tmp_path_factory.mktemp("prometheus"), targets) as running:
        yield running


def _send_the_same_traffic_to_every_server(
    servers: dict[str, RunningServer],
) -> dict[str, list[int]]:
    """The same applicants, request by request, to every server; statuses by role."""
    applicants = make_credit_dataset(n_rows=REQUESTS_PER_SERVER * ROWS_PER_REQUEST, seed=11)
    applicants = applicants.drop(columns=[LABEL])
    statuses: dict[str, list[int]] = {role: [] for role in servers}
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for index in range(REQUESTS_PER_SERVER):
            rows = applicants.iloc[index * ROWS_PER_REQUEST : (index + 1) * ROWS_PER_REQUEST]
            body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
            for role, server in servers.items():
                response = client.post(f"{server.base_url}/invocations", json=body)
                statuses[role].append(response.status_code)
            # Paced, so the counters grow over several scrapes; bounded by the request count.
            behind = (
                started + TRAFFIC_SECONDS * (index + 1) / REQUESTS_PER_SERVER - time.monotonic()
            )
            if behind > 0:
                time.sleep(behind)
    return statuses


def _query(prom: Prometheus) -> Any:
    def query(expr: str) -> list[float] | float:
        response = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        # A query Prometheus refuses is a defect of the template, not a measurement error.
        assert body["status"] == "success", f"{body.get('error')}\n{expr}"
        return prometheus_result(body["data"])

    return query


@pytest.fixture(scope="module")
def analysis(
    canary_registry: dict[str, str],
    servers: dict[str, RunningServer],
    prometheus_server: Prometheus,
) -> tuple[dict[str, list[int]], dict[str, dict[str, MetricRun]]]:
    """Traffic, then every metric of the template run for each canary."""
    statuses = _send_the_same_traffic_to_every_server(servers)
    sent = REQUESTS_PER_SERVER * len(servers)

    def all_scraped() -> bool:
        total = prometheus_server.query(
            f'sum(http_requests_total{{job="{JOB}", route="/invocations"}})'
        )
        return bool(total) and float(total[0]["value"][1]) == sent

    wait_until(all_scraped, 30, f"{sent} scoring requests scraped")

    rendered = render_overlay("production-canary")
    template = find(rendered, "AnalysisTemplate")["spec"]
    step = next(
        s["analysis"]
        for s in find(rendered, "Rollout")["spec"]["strategy"]["canary"]["steps"]
        if "analysis" in s
    )
    step_args = {arg["name"]: arg["value"] for arg in step["args"]}
    query = _query(prometheus_server)
    runs: dict[str, dict[str, MetricRun]] = {}
    for role in CANARIES:
        given = {
            **step_args,
            "canary-version": canary_registry[role],
            "stable-version": canary_registry["stable"],
            "prometheus-address": prometheus_server.url,
            "window": "1m",
            # Four servers, Prometheus and the load generator share this machine's 2 cores
            # (with other work): its tail latency is not a pod's. Looser latency bounds keep
            # a scheduling hiccup from failing a sound canary; errors and predictions keep
            # the template's defaults.
            "max-p99-seconds": "2",
            "p99-floor-seconds": "0.25",
        }
        runs[role] = {}
        for metric in template["metrics"]:
            resolved = resolve_args(metric, template["args"], given)
            assert "{{" not in json.dumps(resolved)
            assert resolved["provider"]["prometheus"]["address"] == prometheus_server.url
            runs[role][metric["name"]] = run_metric(resolved, query, pause_seconds=0.2)
    return statuses, runs


def _phases(runs: dict[str, MetricRun]) -> dict[str, str]:
    return {name: run.phase for name, run in runs.items()}


def _report(runs: dict[str, MetricRun]) -> str:
    return "\n".join(f"{r.name}: {r.phase} {r.phases} {r.values}" for r in runs.values())


@pytest.mark.slow
def test_a_sound_canary_passes_every_metric(
    analysis: tuple[dict[str, list[int]], dict[str, dict[str, MetricRun]]],
) -> None:
    statuses, runs = analysis
    assert set(statuses["stable"]) == set(statuses["good"]) == {200}
    good = runs["good"]
    assert set(_phases(good).values()) == {SUCCESSFUL}, _report(good)
    # Every measurement was a single number: each query selected what it meant to.
    for run in good.values():
        assert all(isinstance(v, list) and len(v) == 1 for v in run.values), _report(good)


@pytest.mark.slow
def test_a_canary_answering_5xx_fails_on_its_error_ratio_alone_and_against_stable(
    analysis: tuple[dict[str, list[int]], dict[str, dict[str, MetricRun]]],
) -> None:
    statuses, runs = analysis
    assert 500 in statuses["failing"]
    assert 200 in statuses["failing"]
    failing = runs["failing"]
    assert {name: failing[name].phase for name in ERROR_METRICS} == dict.fromkeys(
        ERROR_METRICS, FAILED
    ), _report(failing)


@pytest.mark.slow
def test_a_canary_shifting_its_predictions_fails_while_answering_fast_200s(
    analysis: tuple[dict[str, list[int]], dict[str, dict[str, MetricRun]]],
) -> None:
    statuses, runs = analysis
    assert set(statuses["skewed"]) == {200}
    skewed = runs["skewed"]
    assert skewed[SHIFT_METRIC].phase == FAILED, _report(skewed)
    # Errors and latency cannot catch it: only the prediction comparison does.
    healthy = ERROR_METRICS | LATENCY_METRICS
    assert {name: skewed[name].phase for name in healthy} == dict.fromkeys(healthy, SUCCESSFUL)
    # Nearly every prediction changed class: far beyond the threshold, not at its edge.
    shifts = [v[0] for v in skewed[SHIFT_METRIC].values if isinstance(v, list)]
    assert shifts
    assert min(shifts) > 0.5, _report(skewed)


@pytest.mark.parametrize(
    ("condition", "result", "expected"),
    [
        ("result[0] <= 0.01", [0.0], True),
        ("result[0] <= 0.01", [0.02], False),
        ("result[0] <= 1.5", [float("nan")], False),
        ("len(result) == 0 || result[0] < 2", [], True),
        ("!(result[0] > 1) && result[1] >= 3e-1", [1.0, 0.3], True),
        ("result <= 0.5", 0.25, True),
    ],
)
def test_conditions_evaluate_as_expr_lang_does(
    condition: str, result: list[float] | float, expected: bool
) -> None:
    assert evaluate_condition(condition, result) is expected


@pytest.mark.parametrize(
    ("condition", "result"),
    [
        ("result[0] <= 0.01", []),  # no series: index out of range, as in expr-lang
        ("result[0] + 1 <= 2", [0.5]),  # arithmetic is not implemented: refused, not guessed
        ("result[0]", [1.0]),  # not a boolean
        ("result[0] <= asFloat('1')", [1.0]),
    ],
)
def test_conditions_outside_the_implemented_subset_or_result_are_errors(
    condition: str, result: list[float]
) -> None:
    with pytest.raises(ConditionError):
        evaluate_condition(condition, result)
    assert measurement_phase({"successCondition": condition}, result) == ERROR


def test_an_empty_result_is_an_error_until_the_consecutive_error_limit() -> None:
    metric = {
        "name": "m",
        "count": "3",
        "successCondition": "result[0] <= 1",
        "provider": {"prometheus": {"query": "q"}},
    }
    run = run_metric(metric, lambda expr: [], pause_seconds=0)
    assert run.phase == ERROR
    assert run.phases == [ERROR] * 5


def test_arguments_resolve_like_argo_and_a_missing_one_is_an_error() -> None:
    metric = {"name": "m", "successCondition": "result[0] <= {{args.max}}", "q": '{v="{{args.v}}"}'}
    declared = [{"name": "max", "value": "0.5"}, {"name": "v"}]
    resolved = resolve_args(metric, declared, {"v": 'a"b'})
    assert resolved["successCondition"] == "result[0] <= 0.5"
    assert resolved["q"] == '{v="a"b"}'
    with pytest.raises(ValueError, match="failed to resolve"):
        resolve_args(metric, declared, {})
    with pytest.raises(ValueError, match="does not declare"):
        resolve_args(metric, declared, {"v": "1", "other": "2"})


def _canary_row_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD_PATH.read_text())
    panels = dashboard["panels"]
    row = next(i for i, p in enumerate(panels) if p["type"] == "row" and "Canary" in p["title"])
    return [
        (panel["title"], target["expr"])
        for panel in panels[row + 1 :]
        for target in panel["targets"]
        if "model_info" in target["expr"]
    ]


@pytest.mark.slow
def test_the_dashboard_shows_every_version_side_by_side(
    canary_registry: dict[str, str],
    analysis: tuple[dict[str, list[int]], dict[str, dict[str, MetricRun]]],
    prometheus_server: Prometheus,
) -> None:
    versions = {canary_registry[role] for role in ROLES}
    queries = _canary_row_queries()
    assert len(queries) == 4
    for title, expr in queries:
        series = prometheus_server.query(expand_grafana_variables(expr, duration="1m", value=JOB))
        shown = {sample["metric"]["version"] for sample in series}
        if "5xx" in title:
            assert shown == {canary_registry["failing"]}, title
        else:
            assert shown == versions, title


def test_template_queries_read_only_metrics_labels_and_routes_the_app_exports(
    exported_metrics: dict[str, set[str]], route_templates: set[str]
) -> None:
    """A renamed metric, label or route would leave the analysis without data: fail here."""
    rendered = render_overlay("production-canary")
    template = find(rendered, "AnalysisTemplate")["spec"]
    problems = {}
    for metric in template["metrics"]:
        resolved = resolve_args(metric, template["args"], {"canary-version": "2"})
        query = resolved["provider"]["prometheus"]["query"]
        if found := query_problems(query, exported_metrics, route_templates):
            problems[metric["name"]] = found
    assert problems == {}


def test_every_analysis_of_the_rollout_resolves_to_metrics_argo_accepts() -> None:
    """The background analysis ("0" measurements: until promotion) and the step analyses."""
    rendered = render_overlay("production-canary")
    template = find(rendered, "AnalysisTemplate")["spec"]
    canary = find(rendered, "Rollout")["spec"]["strategy"]["canary"]
    analyses = [canary["analysis"], *(s["analysis"] for s in canary["steps"] if "analysis" in s)]
    counts = set()
    for analysis in analyses:
        given = {arg["name"]: arg["value"] for arg in analysis["args"]}
        for metric in template["metrics"]:
            resolved = resolve_args(metric, template["args"], given)
            assert metric_problems(resolved) == [], metric["name"]
            counts.add(int(resolved["count"]))
    assert counts == {0, 3}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"count": "1", "failureLimit": 2}, "count must be >= failureLimit"),
        ({"interval": "1 minute"}, "invalid interval string"),
        ({"provider": {}}, "exactly one provider"),
    ],
)
def test_argo_metric_validation_refuses_what_argo_refuses(
    change: dict[str, Any], problem: str
) -> None:
    metric = {"name": "m", "interval": "1m", "count": "3", "failureLimit": 1}
    metric["provider"] = {"prometheus": {"query": "q"}}
    found = metric_problems({**metric, **change})
    assert any(line.startswith(problem) for line in found), found
