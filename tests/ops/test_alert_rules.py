"""The Prometheus alert rules: valid for promtool, unit-tested, reading what the app exports."""

from __future__ import annotations

from typing import Any

import yaml

from tests.ops.promql import (
    ALERT_TESTS_PATH,
    ALERTS_PATH,
    PROMETHEUS_CONFIG_PATH,
    query_problems,
    run_promtool,
)

REQUIRED_ALERTS = {
    "ModelServingHighErrorRate",
    "ModelServingHighLatencyP99",
    "ModelServingNotReady",
    "ModelFeatureDrift",
    "ModelServingLoadSheddingSustained",
}
SEVERITIES = {"page", "ticket"}
# Alerts whose expression is the age of a start time: the age is their pending period, and
# one bad scrape cannot make a start time old.
AGE_ALERTS = {"ModelServingPredictStuck"}


def _alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS_PATH.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(ALERTS_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_alert_rules_fire_and_stay_quiet_as_their_promtool_unit_tests_expect(
    promtool: str,
) -> None:
    result = run_promtool(promtool, "test", "rules", str(ALERT_TESTS_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_example_prometheus_config_loads_the_alert_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", str(PROMETHEUS_CONFIG_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG_PATH.read_text())
    assert config["rule_files"] == [ALERTS_PATH.name]


def test_the_alerts_the_issue_asks_for_exist_once_each() -> None:
    names = [rule["alert"] for rule in _alerts()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


def test_every_alert_has_a_severity_a_summary_a_description_and_a_pending_period() -> None:
    for rule in _alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
        # Without `for`, one bad scrape pages somebody; unless the expression is an age.
        if rule["alert"] not in AGE_ALERTS:
            assert rule.get("for", "0s") not in {"0s", "0m"}, rule["alert"]


def test_the_drift_alert_fires_on_psi_above_0_2_after_15_minutes() -> None:
    drift = next(rule for rule in _alerts() if rule["alert"] == "ModelFeatureDrift")
    assert drift["for"] == "15m"
    assert "model_feature_drift_psi" in drift["expr"]
    assert drift["expr"].strip().endswith("> 0.2")


def test_alert_expressions_read_only_metrics_labels_and_routes_the_app_exports(
    exported_metrics: dict[str, set[str]], route_templates: set[str]
) -> None:
    problems = {
        rule["alert"]: found
        for rule in _alerts()
        if (found := query_problems(rule["expr"], exported_metrics, route_templates))
    }
    assert problems == {}


def test_every_alert_has_a_unit_test_that_expects_it_to_fire_and_one_that_expects_quiet() -> None:
    document = yaml.safe_load(ALERT_TESTS_PATH.read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in document["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fires == set()
    assert names - quiet == set()
