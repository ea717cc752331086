"""Run an Argo Rollouts AnalysisTemplate's Prometheus metrics the way its controller does.

There is no cluster here, so no controller: this module does its part of the work, each step
after the Argo Rollouts source named beside it (argoproj/argo-rollouts).
- Arguments: the template's defaults, overridden by the Rollout's; every `{{args.name}}` in a
  metric is replaced in the metric's JSON with the value JSON-escaped, and a missing value is
  an error (utils/analysis ResolveMetricArgs, utils/template ResolveQuotedArgs).
- Query: the Prometheus provider runs an instant query; a vector becomes `result`, the list of
  its sample values, a scalar a number (metricproviders/prometheus processResponse).
- Conditions: expr-lang expressions over `result`; a condition that cannot be evaluated
  (`result[0]` of an empty result) makes the measurement an Error (utils/evaluate).
  No expr engine runs in Python, so `evaluate_condition` implements the subset the template
  uses (numbers, `result`, `result[i]`, `len(result)`, comparisons, `&&`, `||`, `!`,
  parentheses) and refuses anything else, so a template that outgrows it fails this test.
- Validation: the checks Argo makes on each resolved metric before it runs (count against
  failureLimit and inconclusiveLimit, an interval when count > 1, a Go duration, exactly one
  provider; utils/analysis ValidateMetric).
- Metric phase: Failed once failed measurements exceed failureLimit (default 0),
  Inconclusive once inconclusive ones exceed inconclusiveLimit (default 0), Error once
  consecutive errors exceed consecutiveErrorLimit (default 4), else Successful after `count`
  measurements, Errors not counted (analysis/analysis.go assessMetricStatus).
- Run phase: every metric measured each interval; once a metric ends Failed, Error or
  Inconclusive the run terminates and the metrics still measuring end Successful; the run's
  phase is the worst of its metrics' (Successful < Inconclusive < Error < Failed;
  asssessRunStatus, utils/analysis IsTerminating and analysisStatusOrder). A Failed or Error
  run aborts the Rollout, an Inconclusive one pauses it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUCCESSFUL = "Successful"
FAILED = "Failed"
INCONCLUSIVE = "Inconclusive"
ERROR = "Error"

_ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<op><=|>=|==|!=|&&|\|\||[<>()\[\]!])|(?P<name>[A-Za-z_]\w*))"
)

# What Argo's provider hands the conditions as `result` (prometheus_result builds it).
Query = Callable[[str], list[float] | float]


class ConditionError(ValueError):
    """The condition cannot be evaluated on this result: Argo marks the measurement Error."""


def resolve_args(
    metric: dict[str, Any], template_args: list[dict[str, Any]], given: dict[str, str]
) -> dict[str, Any]:
    """The metric with every `{{args.name}}` replaced, as Argo resolves an AnalysisRun's."""
    values = {arg["name"]: arg.get("value") for arg in template_args}
    unknown = given.keys() - values.keys()
    if unknown:
        raise ValueError(f"arguments the template does not declare: {sorted(unknown)}")
    values.update(given)

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            raise ValueError(f"failed to resolve {match.group(0)}")
        return json.dumps(str(value))[1:-1]

    resolved: dict[str, Any] = json.loads(_ARG.sub(substitute, json.dumps(metric)))
    return resolved


_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


def metric_problems(metric: dict[str, Any]) -> list[str]:
    """What Argo's ValidateMetric refuses in a resolved metric (empty: it runs)."""
    count = int(metric.get("count") or 0)
    failure_limit = int(metric.get("failureLimit") or 0)
    inconclusive_limit = int(metric.get("inconclusiveLimit") or 0)
    problems = []
    if count > 0 and count < failure_limit:
        problems.append("count must be >= failureLimit")
    if count > 0 and count < inconclusive_limit:
        problems.append("count must be >= inconclusiveLimit")
    if count > 1 and not metric.get("interval"):
        problems.append("interval must be specified when count > 1")
    for key in ("interval", "initialDelay"):
        if metric.get(key) and not _GO_DURATION.fullmatch(str(metric[key])):
            problems.append(f"invalid {key} string: {metric[key]!r}")
    if len(metric.get("provider", {})) != 1:
        problems.append("exactly one provider must be specified")
    return problems


def prometheus_result(data: dict[str, Any]) -> list[float] | float:
    """`result` as Argo's Prometheus provider builds it from an instant query's data."""
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    if data["resultType"] == "vector":
        return [float(sample["value"][1]) for sample in data["result"]]
    raise ConditionError(f"Prometheus metric type not supported: {data['resultType']}")


Thunk = Callable[[], Any]


class _Parser:
    """Parses into thunks first, so `||` and `&&` short-circuit as expr-lang's do."""

    def __init__(self, condition: str, result: list[float] | float) -> None:
        self.tokens = self._tokenize(condition)
        self.position = 0
        self.result = result

    @staticmethod
    def _tokenize(condition: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while position < len(condition.rstrip()):
            match = _TOKEN.match(condition, position)
            if match is None or match.end() == position:
                raise ConditionError(f"unsupported syntax at {condition[position:]!r}")
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ConditionError("unexpected end of condition")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise ConditionError(f"expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> bool:
        program = self.disjunction()
        if self.position != len(self.tokens):
            raise ConditionError(f"unexpected {self.peek()!r}")
        value = program()
        if not isinstance(value, bool):
            raise ConditionError("the condition is not a boolean")
        return value

    def disjunction(self) -> Thunk:
        left = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Thunk:
        left = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            left = _both(left, right)
        return left

    def comparison(self) -> Thunk:
        left = self.unary()
        operator = self.peek()
        if operator not in _COMPARISONS:
            return left
        self.take()
        right = self.unary()
        return lambda: _compare(left(), operator, right())

    def unary(self) -> Thunk:
        if self.peek() == "!":
            self.take()
            operand = self.unary()
            return lambda: not _boolean(operand())
        return self.primary()

    def primary(self) -> Thunk:
        kind, text = self.take()
        if kind == "number":
            number = float(text)
            return lambda: number
        if text == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if text == "result":
            if self.peek() != "[":
                return lambda: self.result
            self.take("[")
            kind, index = self.take()
            self.take("]")
            if kind != "number" or not index.isdigit():
                raise ConditionError("result index must be a whole number")
            return lambda: self._item(int(index))
        if text == "len":
            self.take("(")
            self.take("result")
            self.take(")")
            return lambda: float(len(self._list()))
        raise ConditionError(f"unsupported name or symbol {text!r}")

    def _list(self) -> list[float]:
        if not isinstance(self.result, list):
            raise ConditionError("result is a number, not a list")
        return self.result

    def _item(self, index: int) -> float:
        values = self._list()
        if index >= len(values):
            raise ConditionError(f"index out of range: {index} (array length {len(values)})")
        return values[index]


_COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _compare(left: Any, operator: str, right: Any) -> bool:
    """IEEE semantics, as in Go: every comparison with NaN is false except !=."""
    if not all(isinstance(v, float) for v in (left, right)):
        raise ConditionError(f"cannot compare {left!r} {operator} {right!r}")
    return bool(_COMPARISONS[operator](left, right))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"{value!r} is not a boolean")
    return value


def _either(left: Thunk, right: Thunk) -> Thunk:
    return lambda: _boolean(left()) or _boolean(right())


def _both(left: Thunk, right: Thunk) -> Thunk:
    return lambda: _boolean(left()) and _boolean(right())


def evaluate_condition(condition: str, result: list[float] | float) -> bool:
    return _Parser(condition, result).parse()


def measurement_phase(metric: dict[str, Any], result: list[float] | float) -> str:
    """utils/evaluate EvaluateResult: the phase one result gives under the metric's conditions."""
    success, failure = metric.get("successCondition", ""), metric.get("failureCondition", "")
    try:
        succeeded = evaluate_condition(success, result) if success else False
        failed = evaluate_condition(failure, result) if failure else False
    except ConditionError:
        return ERROR
    if not success and not failure:
        return SUCCESSFUL
    if success and not failure:
        failed = not succeeded
    elif failure and not success:
        succeeded = not failed
    if failed:
        return FAILED
    return SUCCESSFUL if succeeded else INCONCLUSIVE


@dataclass
class MetricRun:
    """Measurements of one metric and the phase Argo would give it."""

    name: str
    query: str
    values: list[list[float] | float | None] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    phase: str = ""


@dataclass
class AnalysisRun:
    """Every metric of one analysis run, and the run's phase."""

    metrics: dict[str, MetricRun]
    phase: str


# Completed phases from best to worst (utils/analysis analysisStatusOrder, completed ones).
_BEST_TO_WORST = (SUCCESSFUL, INCONCLUSIVE, ERROR, FAILED)


def run_analysis(
    metrics: list[dict[str, Any]], query: Query, pause_seconds: float = 1.0
) -> AnalysisRun:
    """Measure every metric once per round, `pause_seconds` apart (the template's interval
    and initial delay, compressed), until each has ended or one ended badly."""
    runs = {metric["name"]: MetricRun(metric["name"], _query_of(metric)) for metric in metrics}
    measuring = list(metrics)
    for metric in metrics:
        if int(metric.get("count") or 0) < 1:
            raise ValueError(f"{metric['name']}: an unbounded count would measure forever here")
    while measuring:
        if any(run.phases for run in runs.values()):
            time.sleep(pause_seconds)
        for metric in measuring:
            _measure(metric, runs[metric["name"]], query)
        measuring = [metric for metric in measuring if not runs[metric["name"]].phase]
        if any(run.phase in (FAILED, ERROR, INCONCLUSIVE) for run in runs.values()):
            for metric in measuring:  # the run terminates: what still measures is Successful
                runs[metric["name"]].phase = SUCCESSFUL
            measuring = []
    worst = max((run.phase for run in runs.values()), key=_BEST_TO_WORST.index)
    return AnalysisRun(runs, worst)


def run_metric(metric: dict[str, Any], query: Query, pause_seconds: float = 1.0) -> MetricRun:
    """One metric alone, as a run of one metric."""
    return run_analysis([metric], query, pause_seconds).metrics[metric["name"]]


def _query_of(metric: dict[str, Any]) -> str:
    query: str = metric["provider"]["prometheus"]["query"]
    return query


def _measure(metric: dict[str, Any], run: MetricRun, query: Query) -> None:
    """One measurement, then the metric's phase if that ended it."""
    result: list[float] | float | None
    try:
        measured = query(run.query)
    except ConditionError:
        result, phase = None, ERROR
    else:
        result, phase = measured, measurement_phase(metric, measured)
    run.values.append(result)
    run.phases.append(phase)
    if run.phases.count(FAILED) > int(metric.get("failureLimit", 0)):
        run.phase = FAILED
    elif run.phases.count(INCONCLUSIVE) > int(metric.get("inconclusiveLimit", 0)):
        run.phase = INCONCLUSIVE
    elif _trailing_errors(run.phases) > int(metric.get("consecutiveErrorLimit", 4)):
        run.phase = ERROR
    elif len(run.phases) - run.phases.count(ERROR) >= int(metric["count"]):
        run.phase = SUCCESSFUL


def _trailing_errors(phases: list[str]) -> int:
    count = 0
    for phase in reversed(phases):
        if phase != ERROR:
            break
        count += 1
    return count
