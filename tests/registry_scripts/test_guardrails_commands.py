"""`python -m registry_scripts.guardrails` (attach, show, propose) and the gate's use of rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient

from model_fetch.guardrails import (
    RULES_FILE,
    RULES_SHA256_TAG,
    RULES_TAG,
    read_rules_text,
    sha256_of,
)
from model_fetch.origin import resolve_origin
from model_wrapper.packaging import DEMO_RULES_FILE
from registry_scripts import guardrails, validate
from registry_scripts._registration import register_model_version
from registry_scripts.export import export_model
from tests.registry_scripts.support import TEST_FLOOR, CommandRunner
from tests.support.guarded import log_frame_model

NAME = "guarded"
OUTPUT_RULES = """\
version: 1
rules:
  - {id: amount-positive, column: amount, min: 0, severity: minor, mode: shadow}
  - {id: score-bounds, output: score, min: 0, max: 1, severity: critical, mode: enforce}
"""


def _frame_version(client: MlflowClient) -> str:
    return str(register_model_version(client, log_frame_model("scorer"), NAME).version)


def _attach(run_command: CommandRunner, version: str, path: Path, text: str) -> tuple[int, Any]:
    path.write_text(text)
    args = ["attach", "--name", NAME, "--version", version, "--rules", str(path)]
    return run_command(guardrails.main, args)


def test_attach_stores_the_checked_file_on_the_version_and_show_reads_it(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version = _frame_version(client)
    code, result = _attach(run_command, version, tmp_path / "rules.yaml", OUTPUT_RULES)
    assert (code, result["rules"]) == (0, 2)
    tags = client.get_model_version(NAME, version).tags
    assert tags[RULES_TAG] == OUTPUT_RULES
    assert tags[RULES_SHA256_TAG] == sha256_of(OUTPUT_RULES) == result["sha256"]

    code, shown = run_command(guardrails.main, ["show", "--name", NAME, "--version", version])
    assert code == 0
    assert [rule["id"] for rule in shown["rules"]] == ["amount-positive", "score-bounds"]


def test_attach_refuses_an_unknown_output_field_and_stores_nothing(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version = _frame_version(client)
    text = OUTPUT_RULES.replace("output: score", "output: probability")
    code, result = _attach(run_command, version, tmp_path / "rules.yaml", text)
    assert code == 2
    assert "rule 'score-bounds': output field 'probability' is not in" in result["error"]
    assert RULES_TAG not in client.get_model_version(NAME, version).tags


def test_the_gate_reports_each_rules_share_and_fails_on_a_broken_critical_output_rule(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    amount = np.linspace(100, 2000, 40)
    data = pd.DataFrame(
        {
            "age": np.full(40, 30, dtype="int64"),
            "amount": amount,
            "channel": "web",
            "defaulted": (amount > 1000).astype(int),
        }
    )
    data_path = tmp_path / "holdout.csv"
    data.to_csv(data_path, index=False)
    gate = ["--name", NAME, "--floor", TEST_FLOOR, "--data", str(data_path)]

    broken = _frame_version(client)
    _attach(run_command, broken, tmp_path / "strict.yaml", OUTPUT_RULES)
    code, result = run_command(validate.main, [*gate, "--version", broken])
    above_one = float(np.mean(amount > 1000))
    assert (code, result["passed"]) == (3, False)
    assert result["guardrails"] == {"amount-positive": 0.0, "score-bounds": above_one}
    assert "critical output rules broken" in result["reason"]

    wide = _frame_version(client)
    _attach(run_command, wide, tmp_path / "wide.yaml", OUTPUT_RULES.replace("max: 1,", "max: 5,"))
    code, result = run_command(validate.main, [*gate, "--version", wide])
    assert (code, result["passed"]) == (0, True)
    assert result["guardrails"] == {"amount-positive": 0.0, "score-bounds": 0.0}


def test_propose_drafts_rules_that_attach_as_they_are_as_the_demos_own_rules_do(
    client: MlflowClient,
    register_demo: Callable[..., str],
    run_command: CommandRunner,
    tmp_path: Path,
) -> None:
    version = register_demo()
    output = tmp_path / "proposed.yaml"
    args = ["propose", "--name", "credit-risk-scoring", "--version", version]
    code, result = run_command(guardrails.main, [*args, "--output", str(output), "--margin", "0"])
    assert code == 0
    rules = {rule["id"]: rule for rule in yaml.safe_load(output.read_text())["rules"]}
    assert result["rules"] == len(rules)
    age = rules["age-seen-in-training"]
    assert (age["min"], age["max"], age["mode"]) == (21, 75, "shadow")  # make_credit_dataset
    assert set(rules["home-ownership-seen-in-training"]["in"]) == {"own", "mortgage", "rent"}
    attach = ["attach", "--name", "credit-risk-scoring", "--version", version]
    assert run_command(guardrails.main, [*attach, "--rules", str(output)])[0] == 0
    # The rules the demo ships (`train --register` attaches them) fit its signature too.
    assert run_command(guardrails.main, [*attach, "--rules", str(DEMO_RULES_FILE)])[0] == 0


def test_an_exported_version_carries_its_rules_and_the_server_reads_them_there(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version = _frame_version(client)
    _attach(run_command, version, tmp_path / "rules.yaml", OUTPUT_RULES)
    exported = tmp_path / "exported"
    export_model(f"models:/{NAME}/{version}", exported)
    assert (exported / RULES_FILE).read_text() == OUTPUT_RULES
    assert read_rules_text(resolve_origin(str(exported)), exported) == OUTPUT_RULES
