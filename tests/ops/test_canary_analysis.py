"""The canary AnalysisTemplate, run on real components with the shipped overlay's arguments:
it passes a sound canary of any model and fails the canaries clients would suffer from.

One real Prometheus (Debian's binary, 127.0.0.1, 1 s scrapes) scrapes nine real servers, each
the production command with 1 worker, every one a version of one registered model
(tests/ops/canary_models.py): the demo's stable and six canaries of it, and a model that is
not the demo (it counts its `label` output, not `risk_level`) as a stable and a canary. The
stable and canaries of each model get the same requests, as stable and canary pods get the
same live traffic behind one Service; the slow canary also gets a burst it must shed, the
idle one nothing. Then the template rendered by `kubectl kustomize
k8s/overlays/production-canary` is run for each canary the way Argo Rollouts runs an
analysis (tests/ops/argo_analysis.py), with the arguments the Rollout's analysis step passes;
the only others given say where things are (Prometheus, the canary's and the stable's
versions), never a threshold or a field name. Traffic and every wait are bounded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from itertools import takewhile
from typing import Any

import httpx
import pandas as pd
import pytest

from registry_scripts.demo_data import LABEL, make_credit_dataset
from tests.deploy.manifests import find, render_overlay
from tests.ops.argo_analysis import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    AnalysisRun,
    ConditionError,
    Query,
    evaluate_condition,
    measurement_phase,
    metric_problems,
    prometheus_result,
    resolve_args,
    run_analysis,
    run_metric,
)
from tests.ops.canary_models import (
    CHANNEL_COLUMN,
    CHANNEL_VALUE,
    MEASUREMENTS,
    ROLES,
    make_flowers,
)
from tests.ops.prometheus import JOB, Prometheus, running_prometheus
from tests.ops.promql import DASHBOARD_PATH, expand_grafana_variables, query_problems
from tests.support.demo import RegisteredDemo
from tests.support.processes import run_module
from tests.support.production import RunningServer, start_server, wait_ready
from tests.support.waiting import wait_until

# Canary -> the stable it is compared with.
STABLE_OF = {
    "good": "stable",
    "failing": "stable",
    "skewed": "stable",
    "refusing": "stable",
    "slow": "stable",
    "idle": "stable",
    "other-good": "other-stable",
}
DEMO_TRAFFIC = ("stable", "good", "failing", "skewed", "refusing")
OTHER_TRAFFIC = ("other-stable", "other-good")
REQUESTS_PER_SERVER = 150
ROWS_PER_REQUEST = 4
# Every this many requests, a client that does not send the column the refusing canary needs.
WITHOUT_CHANNEL_EVERY = 5
TRAFFIC_SECONDS = 15.0  # spread the requests over this long at least, so rates have samples
SLOW_BURST_THREADS = 8
SLOW_BURST_SECONDS = 10.0
SLOW_BURST_REQUESTS_PER_THREAD = 1000
SLOW_BURST_PAUSE_SECONDS = 0.01  # after each answer, so the burst does not take every core

ERROR_METRICS = {"canary-error-ratio", "canary-error-ratio-vs-stable"}
CLIENT_ERROR_METRIC = "canary-client-error-ratio-vs-stable"
SHED_METRIC = "canary-shed-ratio"
LATENCY_METRICS = {"canary-latency-p99", "canary-latency-p99-vs-stable"}
SHIFT_METRIC = "canary-prediction-shift"
ALL_METRICS = ERROR_METRICS | LATENCY_METRICS | {CLIENT_ERROR_METRIC, SHED_METRIC, SHIFT_METRIC}

Statuses = dict[str, list[int]]


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
            wait_ready(server, seconds=180)
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


def _split_body(rows: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}


def _send_the_same_traffic_to_every_server(servers: dict[str, RunningServer]) -> Statuses:
    """The same applicants, request by request, to the demo's versions, and the same flowers
    to the other model's; statuses by role. A fifth of the applicant requests come from
    clients that do not send the `channel` column."""
    applicants = make_credit_dataset(n_rows=REQUESTS_PER_SERVER * ROWS_PER_REQUEST, seed=11)
    applicants = applicants.drop(columns=[LABEL])
    flowers = make_flowers(REQUESTS_PER_SERVER * ROWS_PER_REQUEST, seed=12)[list(MEASUREMENTS)]
    statuses: Statuses = {role: [] for role in (*DEMO_TRAFFIC, *OTHER_TRAFFIC)}
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for index in range(REQUESTS_PER_SERVER):
            rows = slice(index * ROWS_PER_REQUEST, (index + 1) * ROWS_PER_REQUEST)
            some_applicants = applicants.iloc[rows]
            if index % WITHOUT_CHANNEL_EVERY:
                some_applicants = some_applicants.assign(**{CHANNEL_COLUMN: CHANNEL_VALUE})
            bodies = {
                **dict.fromkeys(DEMO_TRAFFIC, _split_body(some_applicants)),
                **dict.fromkeys(OTHER_TRAFFIC, _split_body(flowers.iloc[rows])),
            }
            for role, body in bodies.items():
                response = client.post(f"{servers[role].base_url}/invocations", json=body)
                statuses[role].append(response.status_code)
            # Paced, so the counters grow over several scrapes; bounded by the request count.
            behind = (
                started + TRAFFIC_SECONDS * (index + 1) / REQUESTS_PER_SERVER - time.monotonic()
            )
            if behind > 0:
                time.sleep(behind)
    return statuses


def _send_a_burst_to_the_slow_canary(server: RunningServer) -> list[int]:
    """More concurrent requests than its one admission slot: most are shed with 503."""
    body = _split_body(make_credit_dataset(n_rows=1, seed=13).drop(columns=[LABEL]))
    statuses: list[int] = []
    deadline = time.monotonic() + SLOW_BURST_SECONDS

    def client_loop() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(SLOW_BURST_REQUESTS_PER_THREAD):
                if time.monotonic() > deadline:
                    return
                statuses.append(
                    client.post(f"{server.base_url}/invocations", json=body).status_code
                )
                time.sleep(SLOW_BURST_PAUSE_SECONDS)

    threads = [threading.Thread(target=client_loop) for _ in range(SLOW_BURST_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SLOW_BURST_SECONDS + 60)
    return statuses


def _query(prom: Prometheus) -> Query:
    def query(expr: str) -> list[float] | float:
        response = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        # A query Prometheus refuses is a defect of the template, not a measurement error.
        assert body["status"] == "success", f"{body.get('error')}\n{expr}"
        return prometheus_result(body["data"])

    return query


def _rollout_step_args(rendered: list[dict[str, Any]]) -> dict[str, str]:
    step = next(
        s["analysis"]
        for s in find(rendered, "Rollout")["spec"]["strategy"]["canary"]["steps"]
        if "analysis" in s
    )
    return {arg["name"]: arg["value"] for arg in step["args"]}


def _report(run: AnalysisRun) -> str:
    lines = [f"run: {run.phase}"]
    lines += [f"  {m.name}: {m.phase} {m.phases} {m.values}" for m in run.metrics.values()]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def analysis(
    canary_registry: dict[str, str],
    servers: dict[str, RunningServer],
    prometheus_server: Prometheus,
) -> tuple[Statuses, dict[str, AnalysisRun]]:
    """Traffic, then the template's analysis run for each canary."""
    statuses = _send_the_same_traffic_to_every_server(servers)
    statuses["slow"] = _send_a_burst_to_the_slow_canary(servers["slow"])
    sent = sum(len(answered) for answered in statuses.values())

    def all_scraped() -> bool:
        total = prometheus_server.query(
            f'sum(http_requests_total{{job="{JOB}", route="/invocations"}})'
        )
        return bool(total) and float(total[0]["value"][1]) == sent

    wait_until(all_scraped, 30, f"{sent} scoring requests scraped")

    rendered = render_overlay("production-canary")
    template = find(rendered, "AnalysisTemplate")["spec"]
    step_args = _rollout_step_args(rendered)
    query = _query(prometheus_server)
    runs: dict[str, AnalysisRun] = {}
    for canary, stable in STABLE_OF.items():
        given = {
            **step_args,
            "canary-version": canary_registry[canary],
            "stable-version": canary_registry[stable],
            "prometheus-address": prometheus_server.url,
        }
        metrics = [resolve_args(metric, template["args"], given) for metric in template["metrics"]]
        for metric in metrics:
            assert "{{" not in json.dumps(metric)
            assert metric["provider"]["prometheus"]["address"] == prometheus_server.url
        runs[canary] = run_analysis(metrics, query, pause_seconds=0.2)
        print(f"\n{canary} (against {stable}):\n{_report(runs[canary])}")
    return statuses, runs


def _phases(run: AnalysisRun, names: set[str] | None = None) -> dict[str, str]:
    return {n: m.phase for n, m in run.metrics.items() if names is None or n in names}


@pytest.mark.slow
def test_a_sound_canary_of_the_demo_passes_every_metric(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
) -> None:
    statuses, runs = analysis
    assert set(statuses["stable"]) == set(statuses["good"]) == {200}
    good = runs["good"]
    assert good.phase == SUCCESSFUL, _report(good)
    assert set(_phases(good).values()) == {SUCCESSFUL}, _report(good)
    # Every measurement was a single number: each query selected what it meant to.
    for metric in good.metrics.values():
        assert all(isinstance(v, list) and len(v) == 1 for v in metric.values), _report(good)


@pytest.mark.slow
def test_a_sound_canary_of_a_model_counting_another_field_passes_every_metric(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
    canary_registry: dict[str, str],
    prometheus_server: Prometheus,
) -> None:
    """No argument names the field: the shift is measured over `label`, the field it counts."""
    statuses, runs = analysis
    assert set(statuses["other-stable"]) == set(statuses["other-good"]) == {200}
    other = runs["other-good"]
    assert other.phase == SUCCESSFUL, _report(other)
    assert set(_phases(other).values()) == {SUCCESSFUL}, _report(other)
    # The shift compared the versions' `label` shares: without the template's fallback for a
    # model counting nothing, the comparison itself has a value.
    comparison = other.metrics[SHIFT_METRIC].query.split("\nor on()\n")[0]
    fields = prometheus_server.query(
        f'count by (field) (model_predictions_total{{job="{JOB}", field!=""}}'
        f' * on(instance) group_left() model_info{{version="{canary_registry["other-good"]}"}})'
    )
    assert [series["metric"]["field"] for series in fields] == ["label"]
    measured = prometheus_server.query(comparison)
    assert len(measured) == 1, comparison
    assert 0 <= float(measured[0]["value"][1]) <= 0.1


@pytest.mark.slow
def test_a_canary_answering_5xx_fails_on_its_error_ratio_alone_and_against_stable(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
) -> None:
    statuses, runs = analysis
    assert 500 in statuses["failing"]
    assert 200 in statuses["failing"]
    failing = runs["failing"]
    assert failing.phase == FAILED, _report(failing)
    assert _phases(failing, ERROR_METRICS) == dict.fromkeys(ERROR_METRICS, FAILED)


@pytest.mark.slow
def test_a_canary_refusing_a_fifth_of_the_requests_with_422_fails_against_stable(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
) -> None:
    """The stable answers the same requests 200: the refusals are the canary's own."""
    statuses, runs = analysis
    assert set(statuses["stable"]) == {200}
    refused = statuses["refusing"].count(422)
    assert refused == REQUESTS_PER_SERVER // WITHOUT_CHANNEL_EVERY
    assert set(statuses["refusing"]) == {200, 422}
    refusing = runs["refusing"]
    assert refusing.phase == FAILED, _report(refusing)
    assert refusing.metrics[CLIENT_ERROR_METRIC].phase == FAILED, _report(refusing)
    measured = [v[0] for v in refusing.metrics[CLIENT_ERROR_METRIC].values if isinstance(v, list)]
    assert min(measured) > 0.15, _report(refusing)
    # 5xx, latency and the answers it does give are sound: only the refusals stop it.
    others = ALL_METRICS - {CLIENT_ERROR_METRIC}
    assert _phases(refusing, others) == dict.fromkeys(others, SUCCESSFUL), _report(refusing)


@pytest.mark.slow
def test_a_slow_canary_being_shed_fails_on_the_latency_of_its_answers(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
    canary_registry: dict[str, str],
    prometheus_server: Prometheus,
) -> None:
    statuses, runs = analysis
    assert statuses["slow"].count(503) > statuses["slow"].count(200) > 0
    slow = runs["slow"]
    assert slow.phase == FAILED, _report(slow)
    assert _phases(slow, LATENCY_METRICS | {SHED_METRIC}) == dict.fromkeys(
        LATENCY_METRICS | {SHED_METRIC}, FAILED
    ), _report(slow)
    answered_p99 = [v[0] for v in slow.metrics["canary-latency-p99"].values if isinstance(v, list)]
    assert min(answered_p99) > 0.5, _report(slow)
    # What the refusals did to a p99 over every request (as the template measured it before
    # answered requests were told apart), for the record: the answered p99 does not move.
    every = prometheus_server.query(
        "histogram_quantile(0.99, sum by (le) ("
        f'rate(http_request_duration_seconds_bucket{{job="{JOB}", route="/invocations"}}[2m])'
        f' * on(instance) group_left() model_info{{version="{canary_registry["slow"]}"}}))'
    )
    print(f"slow canary: p99 over every request {every[0]['value'][1]}, answered {answered_p99}")


@pytest.mark.slow
def test_a_canary_with_no_traffic_is_inconclusive_and_pauses_the_rollout(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
) -> None:
    """No traffic proves nothing either way: neither promoted nor aborted, but paused."""
    _, runs = analysis
    idle = runs["idle"]
    assert idle.phase == INCONCLUSIVE, _report(idle)
    assert set(_phases(idle).values()) == {INCONCLUSIVE}, _report(idle)
    assert all(metric.values == [[]] for metric in idle.metrics.values()), _report(idle)


@pytest.mark.slow
def test_a_canary_shifting_its_predictions_fails_while_answering_fast_200s(
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
) -> None:
    statuses, runs = analysis
    assert set(statuses["skewed"]) == {200}
    skewed = runs["skewed"]
    assert skewed.phase == FAILED, _report(skewed)
    assert skewed.metrics[SHIFT_METRIC].phase == FAILED, _report(skewed)
    # Errors and latency cannot catch it: only the prediction comparison does.
    healthy = ALL_METRICS - {SHIFT_METRIC}
    assert _phases(skewed, healthy) == dict.fromkeys(healthy, SUCCESSFUL), _report(skewed)
    # Nearly every prediction changed class: far beyond the threshold, not at its edge.
    shifts = [v[0] for v in skewed.metrics[SHIFT_METRIC].values if isinstance(v, list)]
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


def _judged(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "count": "3",
        "failureLimit": 1,
        "successCondition": "len(result) > 0 && result[0] <= 1",
        "failureCondition": "len(result) > 0 && result[0] > 1",
        "provider": {"prometheus": {"query": query}},
    }


def test_a_run_ends_with_its_first_metric_to_end_badly_and_takes_the_worst_phase() -> None:
    """As Argo's controller does: an Inconclusive metric terminates the run before another
    metric's second failure, which then counts Successful; Failed is worse than Error."""
    results: dict[str, list[float]] = {"quiet": [], "failing": [2.0], "fine": [0.5]}
    run = run_analysis(
        [_judged(name, name) for name in ("quiet", "failing", "fine")],
        lambda query: results[query],
        pause_seconds=0,
    )
    assert run.phase == INCONCLUSIVE
    assert {name: m.phase for name, m in run.metrics.items()} == {
        "quiet": INCONCLUSIVE,
        "failing": SUCCESSFUL,
        "fine": SUCCESSFUL,
    }
    assert run.metrics["failing"].phases == [FAILED]

    def failing_or_broken(query: str) -> list[float]:
        if query == "broken":
            raise ConditionError("Prometheus did not answer")
        return [2.0]

    run = run_analysis(
        [_judged("failing", "failing"), _judged("broken", "broken")],
        failing_or_broken,
        pause_seconds=0,
    )
    assert run.phase == FAILED
    assert run.metrics["failing"].phases == [FAILED, FAILED]
    assert run.metrics["broken"].phase == SUCCESSFUL  # terminated before its 5th error


@pytest.mark.parametrize(
    ("result", "phase"),
    [([], INCONCLUSIVE), ([float("nan")], INCONCLUSIVE), ([0.0], SUCCESSFUL), ([1e9], FAILED)],
)
def test_every_template_metric_is_inconclusive_without_canary_traffic(
    result: list[float], phase: str
) -> None:
    """An empty result (the canary answered nothing in the window) or a NaN pauses the
    rollout; a number is judged."""
    rendered = render_overlay("production-canary")
    template = find(rendered, "AnalysisTemplate")["spec"]
    for metric in template["metrics"]:
        resolved = resolve_args(metric, template["args"], {"canary-version": "2"})
        assert measurement_phase(resolved, result) == phase, metric["name"]


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
    in_row = takewhile(lambda panel: panel["type"] != "row", panels[row + 1 :])
    return [
        (panel["title"], target["expr"])
        for panel in in_row
        for target in panel["targets"]
        if "model_info" in target["expr"]
    ]


@pytest.mark.slow
def test_the_dashboard_shows_every_version_side_by_side(
    canary_registry: dict[str, str],
    analysis: tuple[Statuses, dict[str, AnalysisRun]],
    prometheus_server: Prometheus,
) -> None:
    """Every version that was sent traffic, side by side; 5xx only where there were some.
    A version shows where its value is above 0: a pod exports the series of a failing model
    at 0 from its start, so an idle version has a 0 request rate and a NaN 5xx ratio."""
    versions = {canary_registry[role] for role in ROLES if role != "idle"}
    queries = _canary_row_queries()
    assert len(queries) == 4
    for title, expr in queries:
        series = prometheus_server.query(expand_grafana_variables(expr, duration="2m", value=JOB))
        shown = {sample["metric"]["version"] for sample in series if float(sample["value"][1]) > 0}
        if "5xx" in title:
            assert shown == {canary_registry["failing"], canary_registry["slow"]}, title
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
