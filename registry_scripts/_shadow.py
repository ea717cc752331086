"""The comparison a serving pod made between its model and a shadow candidate, read back.

The server counts it in its model_shadow_* metrics (app.runtime.shadow). This module reads
them from a server's /metrics (all its workers merged) or from Prometheus (summed over every
pod it scrapes), and sums them up: agreement per output field, the largest disagreement
cells, quantiles of numeric differences, failures. `shadow_report` prints that summary;
`promote --require-shadow-agreement` holds a candidate to it.

Agreement of a field: for a non-numeric field, the share of compared rows whose two values
are equal (the server's `agreed` label); for a numeric field, the share whose two values
are exactly equal (the difference histogram's first bucket, le="0.0").
"""

from __future__ import annotations

import argparse
import json
import math
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from registry_scripts._errors import GateFailedError, RegistryUnreachableError, UsageError

FETCH_TIMEOUT_SECONDS = 10.0
QUANTILES = (0.5, 0.9, 0.99)
LARGEST_CELLS = 10
_EXACT = 0.0  # the difference bucket of exact agreement


@dataclass
class ShadowEvidence:
    """The model_shadow_* samples, summed over workers (and pods)."""

    shadow_versions: set[tuple[str, str]] = field(default_factory=set)  # (name, version)
    rows: dict[str, float] = field(default_factory=dict)  # outcome -> rows
    errors: float = 0.0
    # (field, primary value, shadow value, agreed) -> rows
    pairs: dict[tuple[str, str, str, bool], float] = field(default_factory=dict)
    # field -> {upper bound: cumulative count}
    differences: dict[str, dict[float, float]] = field(default_factory=dict)
    latency: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative

    @property
    def compared(self) -> float:
        return self.rows.get("compared", 0.0)

    def fields(self) -> list[str]:
        return sorted({pair[0] for pair in self.pairs} | set(self.differences))

    def categorical_fields(self) -> list[str]:
        return sorted({pair[0] for pair in self.pairs})

    def agreement(self, name: str) -> tuple[float, float]:
        """(agreeing rows, compared rows) of one output field."""
        if name in self.differences:
            buckets = self.differences[name]
            return buckets.get(_EXACT, 0.0), buckets.get(math.inf, 0.0)
        cells = [(agreed, n) for (f, _, _, agreed), n in self.pairs.items() if f == name]
        return sum(n for agreed, n in cells if agreed), sum(n for _, n in cells)


def add_source_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Where the shadow's metrics are read: one server, or Prometheus."""
    parser.add_argument(
        f"--{prefix}metrics-url",
        help="a serving pod's /metrics URL, e.g. http://127.0.0.1:8001/metrics",
    )
    parser.add_argument(f"--{prefix}prometheus", help="Prometheus base URL (its HTTP API)")
    parser.add_argument(
        f"--{prefix}selector",
        default="",
        help='with --prometheus: label matchers selecting the pods, e.g. namespace="prod"',
    )


def read_evidence(metrics_url: str | None, prometheus: str | None, selector: str) -> ShadowEvidence:
    if metrics_url and not prometheus:
        return read_server(metrics_url)
    if prometheus and not metrics_url:
        return read_prometheus(prometheus, selector)
    raise UsageError("give one of the metrics URL and the Prometheus URL")


def read_server(metrics_url: str) -> ShadowEvidence:
    """The evidence in a server's /metrics exposition (its ops listener's, or the main port's)."""
    return evidence_from_exposition(_fetch(metrics_url).decode())


def evidence_from_exposition(text: str) -> ShadowEvidence:
    """The evidence in Prometheus' text exposition format."""
    evidence = ShadowEvidence()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            _add(evidence, sample.name, sample.labels, sample.value)
    return evidence


_PROMETHEUS_QUERIES = {
    "model_shadow_info": "max by (name, version) (model_shadow_info{S})",
    "model_shadow_rows_total": "sum by (outcome) (model_shadow_rows_total{S})",
    "model_shadow_errors_total": "sum(model_shadow_errors_total{S})",
    "model_shadow_agreement_total": (
        "sum by (field, primary, shadow, agreed) (model_shadow_agreement_total{S})"
    ),
    "model_shadow_difference_bucket": "sum by (field, le) (model_shadow_difference_bucket{S})",
    "model_shadow_predict_duration_seconds_bucket": (
        "sum by (le) (model_shadow_predict_duration_seconds_bucket{S})"
    ),
}


def read_prometheus(prometheus_url: str, selector: str = "") -> ShadowEvidence:
    """The evidence summed over every series Prometheus holds now, restricted by `selector`
    (label matchers, e.g. `namespace="prod"`). Counters restart with a pod: a report read
    from Prometheus covers the pods running now, since they started."""
    evidence = ShadowEvidence()
    base = prometheus_url.rstrip("/") + "/api/v1/query?"
    for name, query in _PROMETHEUS_QUERIES.items():
        promql = query.replace("{S}", "{" + selector + "}")
        body = json.loads(_fetch(base + urllib.parse.urlencode({"query": promql})))
        if body.get("status") != "success":
            raise UsageError(f"Prometheus refused the query {promql}: {body.get('error')}")
        for series in body["data"]["result"]:
            _add(evidence, name, series["metric"], float(series["value"][1]))
    return evidence


def summarize(evidence: ShadowEvidence) -> dict[str, Any]:
    """What the report prints: agreement per field, largest disagreements, differences."""
    fields = {}
    for name in evidence.fields():
        agreed, total = evidence.agreement(name)
        summary: dict[str, Any] = {
            "kind": "numeric" if name in evidence.differences else "categorical",
            "rows": total,
            "agreement": round(agreed / total, 6) if total else None,
        }
        if name in evidence.differences:
            summary["difference_at_most"] = {
                f"p{round(q * 100)}": _quantile_bound(evidence.differences[name], q)
                for q in QUANTILES
            }
        fields[name] = summary
    disagreements = sorted(
        ((n, f, p, s) for (f, p, s, agreed), n in evidence.pairs.items() if not agreed),
        reverse=True,
    )[:LARGEST_CELLS]
    return {
        "shadow": [{"name": n, "version": v} for n, v in sorted(evidence.shadow_versions)],
        "rows": {outcome: evidence.rows[outcome] for outcome in sorted(evidence.rows)},
        "shadow_errors": evidence.errors,
        "fields": fields,
        "largest_disagreements": [
            {
                "field": f,
                "primary": p,
                "shadow": s,
                "rows": n,
                "share": round(n / evidence.agreement(f)[1], 6),
            }
            for n, f, p, s in disagreements
        ],
        "shadow_latency_seconds_at_most": {
            f"p{round(q * 100)}": _quantile_bound(evidence.latency, q) for q in QUANTILES
        },
    }


def check_shadow_agreement(
    evidence: ShadowEvidence,
    *,
    name: str,
    version: str,
    bound: float,
    min_rows: int,
    fields: list[str] | None,
) -> dict[str, str]:
    """Refuse (GateFailedError) unless `version` of `name` was the shadow, compared on at least
    `min_rows` rows, and agreed at least `bound` on every checked field (the named `fields`;
    unnamed, every non-numeric one). What passed, as audit tags."""
    if not 0.0 < bound <= 1.0:
        raise UsageError(f"--require-shadow-agreement must be in (0, 1], not {bound}")
    details: dict[str, Any] = {"name": name, "version": version, "shadow": summarize(evidence)}
    if (name, version) not in evidence.shadow_versions:
        seen = ", ".join(f"{n} version {v}" for n, v in sorted(evidence.shadow_versions))
        raise GateFailedError(
            f"{name} version {version} is not the shadow model these metrics compare "
            f"({seen or 'no shadow model'}); start a shadow of it first",
            details,
        )
    if len(evidence.shadow_versions) > 1:
        raise GateFailedError(
            "these metrics mix several shadow models; read one server or select one with "
            "--shadow-selector",
            details,
        )
    if evidence.compared < min_rows:
        raise GateFailedError(
            f"the shadow compared {evidence.compared:.0f} rows, fewer than the "
            f"{min_rows} required; let it see more traffic",
            details,
        )
    checked = fields or evidence.categorical_fields()
    if not checked:
        raise GateFailedError(
            "the shadow's outputs have no non-numeric field to check; name the fields "
            "with --shadow-fields",
            details,
        )
    agreement: dict[str, float] = {}
    for checked_field in checked:
        agreed, total = evidence.agreement(checked_field)
        if not total:
            raise GateFailedError(f"no row compared the field '{checked_field}'", details)
        agreement[checked_field] = agreed / total
    failing = {f: share for f, share in agreement.items() if share < bound}
    if failing:
        shown = ", ".join(f"{f} {share:.4f}" for f, share in sorted(failing.items()))
        raise GateFailedError(
            f"{name} version {version} agreed with the served model below {bound} on {shown}",
            details,
        )
    return {
        "shadow.bound": str(bound),
        "shadow.rows": f"{evidence.compared:.0f}",
        "shadow.agreement": json.dumps({f: round(a, 6) for f, a in sorted(agreement.items())}),
    }


def _add(evidence: ShadowEvidence, name: str, labels: dict[str, str], value: float) -> None:
    if name == "model_shadow_info" and value:
        evidence.shadow_versions.add((labels.get("name", ""), labels.get("version", "")))
    elif name == "model_shadow_rows_total":
        outcome = labels["outcome"]
        evidence.rows[outcome] = evidence.rows.get(outcome, 0.0) + value
    elif name == "model_shadow_errors_total":
        evidence.errors += value
    elif name == "model_shadow_agreement_total":
        pair = (labels["field"], labels["primary"], labels["shadow"], labels["agreed"] == "true")
        evidence.pairs[pair] = evidence.pairs.get(pair, 0.0) + value
    elif name == "model_shadow_difference_bucket":
        buckets = evidence.differences.setdefault(labels["field"], defaultdict(float))
        buckets[float(labels["le"])] += value
    elif name == "model_shadow_predict_duration_seconds_bucket":
        bound = float(labels["le"])
        evidence.latency[bound] = evidence.latency.get(bound, 0.0) + value


def _quantile_bound(buckets: dict[float, float], q: float) -> float | str | None:
    """The upper bound of the histogram bucket holding the q-quantile (None: no samples).
    A bound, not an estimate: the value is at most this ("+Inf" past the last bucket)."""
    total = buckets.get(math.inf, 0.0)
    if not total:
        return None
    bound = next(b for b in sorted(buckets) if buckets[b] >= q * total)
    return bound if math.isfinite(bound) else "+Inf"


def _fetch(url: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UsageError(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            body: bytes = response.read()
    except OSError as error:
        raise RegistryUnreachableError(f"cannot read {url}: {error}") from error
    return body
