"""rollback_production and `python -m registry_scripts.rollback`."""

from __future__ import annotations

from collections.abc import Callable

from mlflow import MlflowClient

from registry_scripts import rollback
from registry_scripts._promotion import promote_version
from registry_scripts.rollback import rollback_production
from tests.registry_scripts.support import CommandRunner

NAME = "credit-risk-scoring"


def production_state(client: MlflowClient) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = client.get_registered_model(NAME)
    stages = [
        (str(v.version), str(v.current_stage))
        for v in client.search_model_versions(f"name = '{NAME}'")
    ]
    return model.aliases, sorted(stages)


def test_rollback_restores_previous_alias_and_stage_and_tags_both_versions(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)

    result = rollback_production(client, NAME)

    assert (result["version"], result["rolled_back_from"]) == (v1, v2)
    assert production_state(client) == (
        {"production": 1, "previous": 2},
        [("1", "Production"), ("2", "Archived")],
    )
    assert client.get_model_version(NAME, v1).tags["audit.promoted_reason"] == "rollback"
    assert client.get_model_version(NAME, v2).tags["audit.rolled_back_to_version"] == v1


def test_second_rollback_goes_forward_again_like_kubectl_rollout_undo(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)
    rollback_production(client, NAME)

    assert rollback_production(client, NAME)["version"] == v2
    assert client.get_registered_model(NAME).aliases == {"production": 2, "previous": 1}


def test_rollback_to_a_version_is_idempotent(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    v1, v2, v3 = register_versions(3)
    for version in (v1, v2, v3):
        promote_version(client, NAME, version)

    first = rollback_production(client, NAME, v1)
    again = rollback_production(client, NAME, v1)

    assert (first["changed"], first["rolled_back_from"]) == (True, v3)
    assert (again["changed"], again["rolled_back_from"]) == (False, None)
    assert client.get_registered_model(NAME).aliases == {"production": 1, "previous": 3}


def test_cli_without_production_exits_5(
    register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    register_versions(1)
    code, result = run_command(rollback.main, ["--name", NAME])
    assert code == 5
    assert "no Production version" in result["error"]


def test_cli_without_previous_version_exits_5(
    client: MlflowClient, register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    (v1,) = register_versions(1)
    promote_version(client, NAME, v1)
    code, result = run_command(rollback.main, ["--name", NAME])
    assert code == 5
    assert "--to-version" in result["error"]


def test_cli_rollback_to_version_prints_result(
    client: MlflowClient, register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)
    code, result = run_command(rollback.main, ["--name", NAME, "--to-version", v1])
    assert (code, result["ok"], result["version"], result["rolled_back_from"]) == (0, True, v1, v2)
