"""The shadow evidence a promotion may rely on, read from the metrics a server exports.

The samples come from the server's own shadow metrics (app.observability.metrics), recorded
as its shadow thread records them; the production path (a real server, the report and the
promote command) is tested in tests/app/test_shadow_production.py.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from app.observability.metrics import ShadowMetrics
from app.runtime.comparison import BoundedLabels, compare_outputs
from registry_scripts._errors import GateFailedError, UsageError
from registry_scripts._shadow import (
    ShadowEvidence,
    check_shadow_agreement,
    evidence_from_exposition,
    summarize,
)

NAME = "any-model"


def exported(
    agreeing: int, disagreeing: int, *, versions: tuple[str, ...] = ("7",)
) -> ShadowEvidence:
    """What a server's /metrics says after a shadow of `versions` compared these rows."""
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry)
    for version in versions:
        metrics.info.labels(NAME, version, "run").set(1)
    labels = BoundedLabels()
    primary = [{"class": "a", "p": 0.5}] * (agreeing + disagreeing)
    shadow = [{"class": "a", "p": 0.5}] * agreeing + [{"class": "b", "p": 0.75}] * disagreeing
    comparison = compare_outputs(primary, shadow, labels)
    metrics.rows_for("compared").inc(comparison.rows)
    for (field, p, s, agreed), count in comparison.pairs.items():
        metrics.agreement_for(field, p, s, str(agreed).lower()).inc(count)
    for field, differences in comparison.differences.items():
        for difference in differences:
            metrics.difference_for(field).observe(difference)
    return evidence_from_exposition(generate_latest(registry).decode())


def check(
    evidence: ShadowEvidence, bound: float, *, min_rows: int = 100, fields: list[str] | None = None
) -> dict[str, str]:
    return check_shadow_agreement(
        evidence, name=NAME, version="7", bound=bound, min_rows=min_rows, fields=fields
    )


def test_agreement_above_the_bound_passes_with_its_evidence() -> None:
    tags = check(exported(95, 5), 0.9)
    assert tags["shadow.rows"] == "100"
    assert tags["shadow.agreement"] == '{"class": 0.95}'


def test_agreement_below_the_bound_is_refused() -> None:
    with pytest.raises(GateFailedError, match=r"below 0\.96 on class 0\.9500"):
        check(exported(95, 5), 0.96)


def test_too_few_rows_are_refused_whatever_the_agreement() -> None:
    with pytest.raises(GateFailedError, match="fewer than the 1000 required"):
        check(exported(100, 0), 0.5, min_rows=1000)


def test_a_numeric_field_named_is_held_to_exact_agreement() -> None:
    evidence = exported(90, 10)
    assert check(evidence, 0.9, fields=["p"])["shadow.agreement"] == '{"p": 0.9}'
    with pytest.raises(GateFailedError, match=r"on p 0\.9000"):
        check(evidence, 0.95, fields=["p"])


def test_another_version_or_several_shadows_are_refused() -> None:
    with pytest.raises(GateFailedError, match="not the shadow model"):
        check(exported(100, 0, versions=("6",)), 0.5)
    with pytest.raises(GateFailedError, match="mix several shadow models"):
        check(exported(100, 0, versions=("6", "7")), 0.5)


def test_a_bound_that_cannot_fail_is_a_usage_error() -> None:
    for bound in (0.0, 1.5, float("nan")):
        with pytest.raises(UsageError):
            check(exported(100, 0), bound)


def test_the_summary_lists_the_largest_disagreement_and_difference_bounds() -> None:
    summary = summarize(exported(80, 20))
    assert summary["fields"]["class"]["agreement"] == 0.8
    assert summary["largest_disagreements"] == [
        {"field": "class", "primary": "a", "shadow": "b", "rows": 20.0, "share": 0.2}
    ]
    assert summary["fields"]["p"]["difference_at_most"] == {"p50": 0.0, "p90": 0.5, "p99": 0.5}
