"""register_model_version and `python -m registry_scripts.register` against a real registry."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import pytest
from mlflow import MlflowClient

from registry_scripts import register
from registry_scripts._errors import UsageError
from registry_scripts._registration import register_model_version
from tests.registry_scripts.support import CommandRunner

NAME = "credit-risk-scoring"
TinyModel = Callable[[], tuple[str, str]]


def test_versions_count_up_and_link_run_and_logged_model(
    client: MlflowClient, log_tiny_model: TinyModel
) -> None:
    run_1, uri_1 = log_tiny_model()
    _, uri_2 = log_tiny_model()

    first = register_model_version(client, uri_1, NAME)
    second = register_model_version(client, uri_2, NAME)

    assert (str(first.version), str(second.version)) == ("1", "2")
    assert first.run_id == run_1, "the run comes from the logged model when not given"
    assert first.source == uri_1
    assert "audit.registered_at" in first.tags


def test_runs_uri_resolves_to_the_runs_logged_model(
    client: MlflowClient, log_tiny_model: TinyModel
) -> None:
    run_id, model_uri = log_tiny_model()
    version = register_model_version(client, f"runs:/{run_id}/model", NAME)
    assert (version.source, version.run_id) == (model_uri, run_id)


def test_registered_model_uri_is_refused(client: MlflowClient) -> None:
    with pytest.raises(UsageError):
        register_model_version(client, f"models:/{NAME}/1", NAME)


def test_cli_registers_a_run_and_prints_the_version(
    log_tiny_model: TinyModel, run_command: CommandRunner
) -> None:
    run_id, model_uri = log_tiny_model()
    code, result = run_command(register.main, ["--name", NAME, "--run-id", run_id])
    assert code == 0
    assert result == {
        "ok": True,
        "name": NAME,
        "version": "1",
        "run_id": run_id,
        "source": model_uri,
        "uri": f"models:/{NAME}/1",
    }


def test_cli_registers_a_model_uri(log_tiny_model: TinyModel, run_command: CommandRunner) -> None:
    _, model_uri = log_tiny_model()
    code, result = run_command(register.main, ["--model-uri", model_uri])
    assert (code, result["name"], result["version"]) == (0, NAME, "1")


def test_cli_run_without_a_model_is_not_found(
    sqlite_registry: str, run_command: CommandRunner
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.5)
    code, result = run_command(register.main, ["--run-id", run.info.run_id])
    assert (code, result["exit_code"]) == (5, 5)
    assert "logged no model" in result["error"]


@pytest.mark.parametrize(
    "argv",
    [[], ["--run-id", "abc", "--model-uri", "models:/m-1"], ["--model-uri", f"models:/{NAME}/1"]],
    ids=["no-source", "both-sources", "registered-uri"],
)
def test_cli_usage_errors_exit_2(
    sqlite_registry: str, run_command: CommandRunner, argv: list[str]
) -> None:
    code, result = run_command(register.main, argv)
    assert (code, result["ok"]) == (2, False)


def test_cli_unknown_run_is_not_found(sqlite_registry: str, run_command: CommandRunner) -> None:
    code, _ = run_command(register.main, ["--run-id", "0123456789abcdef0123456789abcdef"])
    assert code == 5
