"""Business guardrails through the production command, on models other than the demo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from model_fetch.guardrails import RULES_SHA256_TAG, RULES_TAG, sha256_of
from registry_scripts.guardrails import main as guardrails_command
from registry_scripts.promote import main as promote_command
from registry_scripts.rollback import main as rollback_command
from tests.support.demo import RegisteredDemo
from tests.support.guarded import log_frame_model, log_sklearn_model, register_with_rules
from tests.support.production import RunningServer, StartServer, wait_ready
from tests.support.waiting import wait_until

INPUT_RULES = """\
version: 1
rules:
  - {id: adult, column: age, min: 18, max: 100, severity: critical, mode: enforce}
  - {id: amount-cap, column: amount, max: 3000, severity: major, mode: warn}
  - {id: amount-small, column: amount, max: 1000, severity: minor, mode: shadow}
"""
OUTPUT_RULES = """\
version: 1
rules:
  - {id: score-bounds, output: score, min: 0, max: 1, severity: critical, mode: enforce}
  - id: high-score-reviewed
    when: {output: score, gt: 0.8}
    then: {output: decision, in: [decline]}
    severity: major
    mode: warn
breaker: {max_violation_share: 0.5, window_seconds: 30, min_requests: 4, open_seconds: 3}
"""
# The next version's rules accept scores up to 10.
WIDER_OUTPUT_RULES = OUTPUT_RULES.replace("max: 1,", "max: 10,")
SECRET_AGE = 7357


def _records(*rows: dict[str, object]) -> dict[str, object]:
    return {"dataframe_records": list(rows)}


def _row(age: int, amount: float, channel: str = "web") -> dict[str, object]:
    return {"age": age, "amount": amount, "channel": channel}


def _serve(start: StartServer, uri: str, workers: int = 2) -> RunningServer:
    server = start(MODEL_URI=uri, workers=workers)
    wait_ready(server)
    return server


def _counted(server: RunningServer, rule: str) -> tuple[float, float]:
    return (
        server.metric("guardrail_checked_rows_total", rule=rule),
        server.metric("guardrail_violating_rows_total", rule=rule),
    )


@pytest.mark.slow
def test_input_rules_enforce_warn_and_shadow_on_a_sklearn_model(
    start: StartServer, registry: RegisteredDemo, tmp_path: Path
) -> None:
    """Enforce refuses naming rule, column and rows (no value); warn answers and logs; shadow
    only counts; every rule's rows are counted exactly."""
    name = "guarded-sklearn"
    version = register_with_rules(name, log_sklearn_model("classifier"), INPUT_RULES, tmp_path)
    server = _serve(start, f"models:/{name}/{version}", workers=1)
    url = f"{server.base_url}/invocations"

    refused = httpx.post(url, json=_records(_row(30, 10.0), _row(SECRET_AGE, 20.0)), timeout=10)
    assert refused.status_code == 422
    body = refused.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "GUARDRAIL_VIOLATION"
    assert "rule 'adult' (critical) on input 'age' at row 1" in body["message"]
    assert str(SECRET_AGE) not in refused.text

    answered = httpx.post(url, json=_records(_row(30, 2000.0), _row(40, 4000.0)), timeout=10)
    assert answered.status_code == 200, answered.text
    assert len(answered.json()["predictions"]) == 2

    # Every input rule checks the refused request's rows too: 2 + 2 rows each.
    assert _counted(server, "adult") == (4.0, 1.0)
    assert _counted(server, "amount-cap") == (4.0, 1.0)
    assert _counted(server, "amount-small") == (4.0, 2.0)
    labelled = server.metric(
        "guardrail_violating_rows_total",
        rule="amount-cap",
        target="amount",
        severity="major",
        mode="warn",
    )
    assert labelled == 1.0
    warned = [line for line in server.log_lines() if "amount-cap" in str(line.get("message"))]
    assert warned
    assert "4000" not in json.dumps(warned)

    listed = httpx.get(f"{server.base_url}/guardrails", timeout=10).json()
    assert [rule["id"] for rule in listed["rules"]] == ["adult", "amount-cap", "amount-small"]
    assert [rule["mode"] for rule in listed["rules"]] == ["enforce", "warn", "shadow"]
    age = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()["paths"]["/invocations"][
        "post"
    ]["requestBody"]["content"]["application/json"]["schema"]["properties"]["dataframe_records"][
        "items"
    ]["properties"]["age"]
    assert (age["minimum"], age["maximum"]) == (18, 100)


@pytest.mark.slow
def test_output_rules_and_the_breaker_on_a_dataframe_model(
    start: StartServer, registry: RegisteredDemo, tmp_path: Path
) -> None:
    """An enforced output rule refuses the answer; the breaker opens past its share (503,
    not ready) and closes after its cool-down."""
    name = "guarded-frame"
    version = register_with_rules(name, log_frame_model("scorer"), OUTPUT_RULES, tmp_path)
    server = _serve(start, f"models:/{name}/{version}", workers=1)
    url = f"{server.base_url}/invocations"

    fine = httpx.post(url, json=_records(_row(30, 300.0), _row(30, 900.0)), timeout=10)
    assert fine.status_code == 200, fine.text  # 0.9 > 0.8 and "review": warned, answered
    assert _counted(server, "high-score-reviewed") == (2.0, 1.0)

    for _ in range(3):  # 3 of 4 requests break a critical rule: above the 0.5 share
        refused = httpx.post(url, json=_records(_row(30, 300.0), _row(30, 1500.0)), timeout=10)
        assert refused.status_code == 422
        assert refused.json()["error_code"] == "GUARDRAIL_VIOLATION"
        assert "rule 'score-bounds' (critical) on output 'score' at row 1" in refused.text
    assert _counted(server, "score-bounds") == (8.0, 3.0)

    paused = httpx.post(url, json=_records(_row(30, 300.0)), timeout=10)
    assert paused.status_code == 503
    assert paused.json()["error_code"] == "GUARDRAIL_BREAKER_OPEN"
    assert httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 503
    assert server.metric("guardrail_breaker_open") == 1.0

    wait_until(
        lambda: httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 200,
        15,
        "the breaker's cool-down to end",
        alive=server.alive,
    )
    assert httpx.post(url, json=_records(_row(30, 300.0)), timeout=10).status_code == 200
    assert server.metric("guardrail_breaker_open") == 0.0


@pytest.mark.slow
def test_rules_follow_promotion_and_rollback(
    start: StartServer, registry: RegisteredDemo, tmp_path: Path
) -> None:
    name = "guarded-releases"
    model_uri = log_frame_model("scorer")
    first = register_with_rules(name, model_uri, OUTPUT_RULES, tmp_path)
    second = register_with_rules(name, model_uri, WIDER_OUTPUT_RULES, tmp_path)
    high = _records(_row(30, 1500.0))

    def status_served() -> int:
        server = _serve(start, f"models:/{name}@production")
        try:
            return httpx.post(f"{server.base_url}/invocations", json=high, timeout=10).status_code
        finally:
            server.kill()

    assert promote_command(["--name", name, "--version", first]) == 0
    assert status_served() == 422
    assert promote_command(["--name", name, "--version", second]) == 0
    assert status_served() == 200
    assert rollback_command(["--name", name]) == 0
    assert status_served() == 422


@pytest.mark.slow
def test_a_mismatched_or_malformed_rules_file_is_refused_at_attach_and_at_start(
    start: StartServer,
    registry: RegisteredDemo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "guarded-refused"
    version = register_with_rules(name, log_frame_model("scorer"), OUTPUT_RULES, tmp_path)
    capsys.readouterr()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(INPUT_RULES.replace("column: age", "column: birth_year"))
    args = ["attach", "--name", name, "--version", version, "--rules", str(unknown)]
    assert guardrails_command(args) == 2
    result = json.loads(capsys.readouterr().out)
    assert (
        "rule 'adult': input column 'birth_year' is not in the model's signature"
        in (result["error"])
    )
    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text(INPUT_RULES.replace("min: 18", "min: eighteen"))
    args[-1] = str(wrong_type)
    assert guardrails_command(args) == 2
    assert "rule 'adult' field 'min'" in json.loads(capsys.readouterr().out)["error"]

    # Written past the command, straight into the registry: the server refuses to start.
    text = INPUT_RULES.replace("column: amount, max: 3000", "column: amount, in: [1, x]")
    client = MlflowClient()
    client.set_model_version_tag(name, version, RULES_TAG, text)
    client.set_model_version_tag(name, version, RULES_SHA256_TAG, sha256_of(text))
    server = start(MODEL_URI=f"models:/{name}/{version}")
    deadline = time.monotonic() + 60
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server.alive()
    assert server.process.returncode != 0
    assert "rule 'amount-cap'" in server.log_tail()
    assert "guardrails are unusable" in server.log_tail()


@pytest.mark.slow
def test_an_operator_resets_an_open_breaker_from_the_ops_listener(
    start: StartServer, registry: RegisteredDemo, tmp_path: Path
) -> None:
    """Open for ten minutes, the breaker closes when the ops listener's reset is posted."""
    name = "guarded-reset"
    rules = OUTPUT_RULES.replace("open_seconds: 3", "open_seconds: 600")
    version = register_with_rules(name, log_frame_model("scorer"), rules, tmp_path)
    server = _serve(start, f"models:/{name}/{version}", workers=1)
    url = f"{server.base_url}/invocations"
    for _ in range(4):
        assert httpx.post(url, json=_records(_row(30, 1500.0)), timeout=10).status_code == 422
    paused = httpx.post(url, json=_records(_row(30, 300.0)), timeout=10)
    assert paused.json()["error_code"] == "GUARDRAIL_BREAKER_OPEN"
    assert httpx.post(f"{server.ops_url}/readyz", timeout=10).status_code == 404

    reset = httpx.post(f"{server.ops_url}/guardrails/breaker/reset", timeout=10)
    assert reset.json() == {"reset": True}
    wait_until(
        lambda: httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 200,
        15,
        "the breaker to close on the reset",
        alive=server.alive,
    )
    assert httpx.post(url, json=_records(_row(30, 300.0)), timeout=10).status_code == 200
    assert any("reset by an operator" in str(line.get("message")) for line in server.log_lines())
