"""`python -m registry_scripts.status`: versions with stage, aliases, gate result, creation."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from mlflow import MlflowClient

from registry_scripts import status
from registry_scripts._promotion import promote_version
from tests.registry_scripts.support import CommandRunner

NAME = "credit-risk-scoring"


def test_status_lists_versions_newest_first_with_stage_aliases_and_gate(
    client: MlflowClient,
    register_versions: Callable[[int], list[str]],
    run_command: CommandRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    v1, v2, v3 = register_versions(3)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)
    client.set_model_version_tag(NAME, v3, "gate.status", "failed")
    client.set_model_version_tag(NAME, v3, "gate.value", "0.51")

    code, result = run_command(status.main, ["--name", NAME])

    assert code == 0
    assert result["production"] == {"alias": "2", "stage": "2"}
    assert result["consistent"] is True
    summary = [(v["version"], v["stage"], v["aliases"]) for v in result["versions"]]
    assert summary == [
        ("3", "None", []),
        ("2", "Production", ["production"]),
        ("1", "Archived", ["previous"]),
    ]
    assert result["versions"][0]["gate"] == {"status": "failed", "value": "0.51"}
    assert result["versions"][1]["audit"]["promoted_from_version"] == "1"
    assert result["versions"][0]["created_at"].endswith("+00:00")
    assert "production" in caplog.text, "a table for people goes to the logs"


def test_status_flags_a_stage_moved_by_hand(
    client: MlflowClient, register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v2)
    client.transition_model_version_stage(NAME, v1, "Production")

    _, result = run_command(status.main, ["--name", NAME])

    assert result["consistent"] is False


def test_status_of_unknown_model_exits_5(sqlite_registry: str, run_command: CommandRunner) -> None:
    code, _ = run_command(status.main, ["--name", "nope"])
    assert code == 5
