"""promote_version and `python -m registry_scripts.promote` against a real SQLite registry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from registry_scripts import promote
from registry_scripts._errors import UsageError
from registry_scripts._promotion import promote_version
from tests.registry_scripts.support import CommandRunner

NAME = "credit-risk-scoring"


def stage_of(client: MlflowClient, version: str) -> str:
    return str(client.get_model_version(NAME, version).current_stage)


def test_first_promotion_sets_alias_stage_and_audit_tags(
    client: MlflowClient,
    register_versions: Callable[[int], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITLAB_USER_LOGIN", "alice")
    monkeypatch.setenv("CI_PIPELINE_URL", "https://gitlab.example.com/p/-/pipelines/42")
    (v1,) = register_versions(1)

    result = promote_version(client, NAME, v1)

    assert result["changed"] is True
    assert result["previous_version"] is None
    # MLflow annotates a version's number as str; its SQLite store answers an int.
    production = client.get_model_version_by_alias(NAME, "production").version
    assert production == int(v1)  # type: ignore[comparison-overlap]
    assert stage_of(client, v1) == "Production"
    tags = client.get_model_version(NAME, v1).tags
    assert tags["audit.promoted_by"] == "alice"
    assert tags["audit.promoted_pipeline"] == "https://gitlab.example.com/p/-/pipelines/42"
    assert tags["audit.promoted_reason"] == "promote"
    assert tags["audit.promoted_at"].endswith("+00:00")


def test_second_promotion_keeps_previous_alias_and_archives_old_stage(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)

    result = promote_version(client, NAME, v2)

    assert result["previous_version"] == v1
    assert client.get_registered_model(NAME).aliases == {"production": 2, "previous": 1}
    assert (stage_of(client, v1), stage_of(client, v2)) == ("Archived", "Production")
    assert client.get_model_version(NAME, v2).tags["audit.promoted_from_version"] == v1


def test_promoting_the_production_version_again_changes_nothing(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)
    tags_before = client.get_model_version(NAME, v2).tags

    result = promote_version(client, NAME, v2)

    assert result["changed"] is False
    assert result["previous_version"] == v1
    assert client.get_registered_model(NAME).aliases == {"production": 2, "previous": 1}
    assert client.get_model_version(NAME, v2).tags == tags_before


def test_promotion_repairs_a_stage_that_drifted_from_the_alias(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    """Someone moved the stage by hand in the UI; promoting the alias holder fixes it."""
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v2)
    client.transition_model_version_stage(NAME, v1, "Production")

    result = promote_version(client, NAME, v2)

    assert result["changed"] is True
    assert (stage_of(client, v1), stage_of(client, v2)) == ("Archived", "Production")


def test_stage_only_registry_counts_as_production_for_previous(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    """A registry promoted with stages alone (no alias yet) still records `previous`."""
    v1, v2 = register_versions(2)
    client.transition_model_version_stage(NAME, v1, "Production")

    promote_version(client, NAME, v2)

    assert client.get_registered_model(NAME).aliases == {"production": 2, "previous": 1}


def test_promoting_the_stage_only_production_version_adds_the_alias(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    (v1,) = register_versions(1)
    client.transition_model_version_stage(NAME, v1, "Production")

    assert promote_version(client, NAME, v1)["changed"] is True
    assert client.get_registered_model(NAME).aliases == {"production": 1}


def test_promote_accepts_int_versions_as_mlflow_returns_them(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    (v1,) = register_versions(1)
    assert promote_version(client, NAME, int(v1))["version"] == v1


def test_unknown_version_raises_not_found(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> None:
    register_versions(1)
    with pytest.raises(MlflowException) as caught:
        promote_version(client, NAME, "7")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("version", ["latest", "0", "-1", "Production", "", "²", "٣"])
def test_non_numeric_version_is_a_usage_error(client: MlflowClient, version: str) -> None:
    with pytest.raises(UsageError):
        promote_version(client, NAME, version)


def test_cli_prints_one_json_line_and_exits_zero(
    register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    (v1,) = register_versions(1)
    code, result = run_command(promote.main, ["--name", NAME, "--version", v1])
    assert code == 0
    assert result["ok"] is True
    assert result["version"] == v1
    assert result["uris"] == [f"models:/{NAME}@production", f"models:/{NAME}/Production"]


@pytest.mark.parametrize(
    ("argv", "exit_code"),
    [
        (["--name", NAME, "--version", "9"], 5),
        (["--name", "no-such-model", "--version", "1"], 5),
        (["--name", NAME, "--version", "latest"], 2),
        (["--name", NAME], 2),
    ],
)
def test_cli_error_exit_codes(
    register_versions: Callable[[int], list[str]],
    run_command: CommandRunner,
    argv: list[str],
    exit_code: int,
) -> None:
    register_versions(1)
    code, result = run_command(promote.main, argv)
    assert (code, result["ok"], result["exit_code"]) == (exit_code, False, exit_code)
    assert result["error"]


def test_require_gate_refuses_an_unvalidated_version(
    client: MlflowClient, register_versions: Callable[[int], list[str]], run_command: CommandRunner
) -> None:
    (v1,) = register_versions(1)
    code, result = run_command(promote.main, ["--version", v1, "--require-gate"])
    assert code == 3
    assert "quality gate" in result["error"]
    assert client.get_registered_model(NAME).aliases == {}

    for key, value in {"status": "passed", "floor": "0.7", "margin": "0.02"}.items():
        client.set_model_version_tag(NAME, v1, f"gate.{key}", value)
    code, result = run_command(promote.main, ["--version", v1, "--require-gate"])
    assert code == 0


@pytest.mark.parametrize(
    ("floor", "margin"), [("nan", "0.02"), ("0.7", "nan"), ("-inf", "0.02"), ("0.7", "")]
)
def test_require_gate_refuses_a_pass_recorded_with_parameters_that_cannot_fail(
    client: MlflowClient,
    register_versions: Callable[[int], list[str]],
    run_command: CommandRunner,
    floor: str,
    margin: str,
) -> None:
    """A pass from a gate run with a NaN floor (before validate refused one) proves nothing."""
    (v1,) = register_versions(1)
    for key, value in {"status": "passed", "floor": floor, "margin": margin}.items():
        client.set_model_version_tag(NAME, v1, f"gate.{key}", value)
    code, result = run_command(promote.main, ["--version", v1, "--require-gate"])
    assert code == 3
    assert "parameters are not valid" in result["error"]
    assert client.get_registered_model(NAME).aliases == {}
