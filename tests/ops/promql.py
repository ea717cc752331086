"""What a PromQL expression reads: metric names, label names and label values of its selectors.

The dashboard and the alert rules are checked against what the app really exports, so a
renamed metric or label breaks a test instead of leaving an empty panel or a silent alert.
Expressions are parsed by a real PromQL parser (promql-parser, a port of Prometheus' own);
`promtool` checks them again with Prometheus' parser in the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from tests.support import PROJECT_ROOT
from tests.support.ci import missing

DASHBOARD_PATH = PROJECT_ROOT / "ops" / "grafana" / "serving-dashboard.json"
ALERTS_PATH = PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG_PATH = PROJECT_ROOT / "ops" / "prometheus" / "prometheus.yml"
ALERT_TESTS_PATH = Path(__file__).resolve().parent / "promtool" / "alerts_test.yml"

# Labels Prometheus adds to every scraped series, and the histogram bucket label.
TARGET_LABELS = frozenset({"job", "instance"})

# Exported with these labels only once traffic the in-process app of the static checks
# does not get has come: drift needs a window of rows, a rejection a limit hit. Until then
# the family has no sample to show its labels: name -> labels. A real server's /metrics is
# checked to carry each, with these labels (test_prometheus_end_to_end.py).
ANNOUNCED_METRICS: dict[str, frozenset[str]] = {
    "model_feature_drift_psi": frozenset({"feature"}),
    "http_requests_rejected_total": frozenset({"reason"}),
    # Counted by Gunicorn's hooks (app/gunicorn_conf.py), which the in-process app has not;
    # the drills' CI test (tests/drills) sees the alert reading them fire on a real server.
    "serving_worker_exits_total": frozenset(),
    "serving_worker_orderly_exits_total": frozenset(),
    # Set by Gunicorn's master from TIMEOUT_SECONDS (app/gunicorn_conf.py), as the above.
    "serving_worker_timeout_seconds": frozenset(),
    # One series per live worker: the `pid` label is prometheus_client's multiprocess
    # mode's ("liveall"), which the in-process app of the static checks is not in.
    "model_predict_started_timestamp_seconds": frozenset({"pid"}),
}

# Exported by another program (or written by Prometheus itself), read by a panel or an
# alert: name -> labels. The Argo Rollouts controller exports rollout_info{namespace, name,
# strategy, traffic_router, phase} (argoproj/argo-rollouts controller/metrics/prommetrics.go
# and rollouts.go); the app's /metrics cannot show it, so it is checked against this list.
EXTERNAL_METRICS: dict[str, frozenset[str]] = {
    "rollout_info": frozenset({"namespace", "name", "strategy", "traffic_router", "phase"}),
    # Prometheus's own, one per target it scrapes: 1 when the scrape succeeded, else 0.
    "up": frozenset(),
}

# Grafana's built-in interval variables stand for durations; other `$variables` are label values.
_GRAFANA_DURATION_VARIABLE = re.compile(r"\$(?:__rate_interval|__interval|__range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass
class SelectorUse:
    """One vector selector of an expression."""

    metric: str
    matchers: list[tuple[str, str, str]]  # (label, operator, value)


@dataclass
class QueryUse:
    """Everything one expression reads."""

    selectors: list[SelectorUse] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        return {selector.metric for selector in self.selectors}


def expand_grafana_variables(expr: str, *, duration: str = "5m", value: str = "variable") -> str:
    """Replace Grafana's template variables: intervals by `duration`, the others by `value`."""
    expr = _GRAFANA_DURATION_VARIABLE.sub(duration, expr)
    return _GRAFANA_VARIABLE.sub(lambda match: value, expr)


def analyse(expr: str) -> QueryUse:
    """Parse `expr` (Grafana variables allowed) and collect its selectors and groupings."""
    use = QueryUse()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, _operator(m.op), m.value) for m in node.matchers.matchers]
            names = [
                value for label, op, value in matchers if label == "__name__" and op == "Equal"
            ]
            metric = node.name or (names[0] if names else "")
            assert metric, f"selector without a metric name in: {expr}"
            use.selectors.append(SelectorUse(metric, [m for m in matchers if m[0] != "__name__"]))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            use.grouping_labels.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                use.grouping_labels.update(node.modifier.matching.labels)
            use.grouping_labels.update(node.modifier.group_labels or [])

    promql_parser.walk(promql_parser.parse(expand_grafana_variables(expr)), visit)
    return use


def exported_labels(exposition: str) -> dict[str, set[str]]:
    """Series name -> label names, from a /metrics body (families without samples too).

    A labelled counter that has not counted yet has a TYPE line and no samples, so names
    are derived from each family's type as well as read from its samples.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for suffix in suffixes.get(family.type, ("",)):
            labels.setdefault(family.name + suffix, set())
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def unknown_routes(operator: str, value: str, routes: set[str]) -> list[str]:
    """The parts of a matcher on `route` that name no route template of the app: the value
    of an equality, or each alternative of a regex that matches none of them whole (the
    templates are values like `/v2/models/{model_name}/infer`; `.+` may stand for a part)."""
    if operator not in {"Re", "NotRe"}:
        return [] if value in routes else [value]
    return [
        alternative
        for alternative in value.split("|")
        if not any(re.fullmatch(alternative, route) for route in routes)
    ]


def find_tool(name: str) -> str:
    """A Prometheus executable (`promtool`, `prometheus`), from $NAME or PATH.

    Missing is a failure under CI, a skip on a workstation.
    """
    path = os.environ.get(name.upper()) or shutil.which(name)
    if not path:
        missing(
            f"{name} is not installed: `apt-get install -y --no-install-recommends prometheus` "
            f"(Debian) provides it, or set {name.upper()} to its path"
        )
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        check=False,
    )


def _operator(op: promql_parser.MatchOp) -> str:
    """'Equal', 'NotEqual', 'Re' or 'NotRe'."""
    return str(op).removeprefix("MatchOp.")


def query_problems(expr: str, exported: dict[str, set[str]], routes: set[str]) -> list[str]:
    """Why `expr` would read nothing from the app: unknown metrics, labels or routes."""
    use = analyse(expr)
    exported = {**{name: set(labels) for name, labels in EXTERNAL_METRICS.items()}, **exported}
    problems = [f"metric {name!r} is not exported" for name in use.metrics - exported.keys()]
    known = [selector for selector in use.selectors if selector.metric in exported]
    for selector in known:
        carried = exported[selector.metric] | TARGET_LABELS
        for label, operator, value in selector.matchers:
            if label not in carried:
                problems.append(f"{selector.metric} has no label {label!r}")
            elif label == "route":
                unknown = unknown_routes(operator, value, routes)
                problems.extend(f"route {v!r} is no route of the app" for v in unknown)
    carried_by_any = set().union(TARGET_LABELS, *(exported[s.metric] for s in known))
    problems.extend(
        f"grouping by {label!r}, which no metric of the query carries"
        for label in sorted(use.grouping_labels - carried_by_any)
    )
    return problems
