"""`python -m registry_scripts.resolve`: registry URIs to concrete, pinnable versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from registry_scripts import resolve
from registry_scripts._errors import UsageError
from registry_scripts._promotion import promote_version
from registry_scripts.resolve import RegistryReference, parse_registry_uri
from tests.registry_scripts.support import CommandRunner

NAME = "credit-risk-scoring"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/m/Production", RegistryReference("m", "stage", "Production")),
        ("models:/m/production", RegistryReference("m", "stage", "Production")),
        ("models:/m/Staging", RegistryReference("m", "stage", "Staging")),
        ("models:/m@production", RegistryReference("m", "alias", "production")),
        ("models:/m/12", RegistryReference("m", "version", "12")),
        ("models:/m/latest", RegistryReference("m", "latest", "latest")),
        ("models:/credit-risk-scoring@previous", RegistryReference(NAME, "alias", "previous")),
    ],
)
def test_parse_registry_uri(uri: str, expected: RegistryReference) -> None:
    assert parse_registry_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "runs:/abc/model",
        "models:/m",
        "models:/m/",
        "models:/m-0123abcd",
        "models:/m/Prod",
        "models:/m/0",
        "models:/@production",
        "models:/m/1/extra",
        "/opt/model",
    ],
)
def test_unresolvable_uris_are_usage_errors(uri: str) -> None:
    with pytest.raises(UsageError):
        parse_registry_uri(uri)


@pytest.fixture
def two_promotions(client: MlflowClient, register_versions: Callable[[int], list[str]]) -> None:
    """Versions 1, 2, 3 with 1 then 2 promoted: production=2, previous=1, 3 unpromoted."""
    v1, v2, _ = register_versions(3)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)


@pytest.mark.usefixtures("two_promotions")
@pytest.mark.parametrize(
    ("uri", "version"),
    [
        (f"models:/{NAME}/Production", "2"),
        (f"models:/{NAME}@production", "2"),
        (f"models:/{NAME}@previous", "1"),
        (f"models:/{NAME}/Archived", "1"),
        (f"models:/{NAME}/latest", "3"),
        (f"models:/{NAME}/3", "3"),
    ],
)
def test_resolve_prints_the_concrete_version(
    run_command: CommandRunner, uri: str, version: str
) -> None:
    code, result = run_command(resolve.main, ["--uri", uri])
    assert code == 0
    assert (result["version"], result["pinned_uri"]) == (version, f"models:/{NAME}/{version}")


@pytest.mark.usefixtures("two_promotions")
@pytest.mark.parametrize(
    "uri", [f"models:/{NAME}@champion", f"models:/{NAME}/Staging", f"models:/{NAME}/9"]
)
def test_missing_alias_stage_or_version_exits_5(run_command: CommandRunner, uri: str) -> None:
    code, result = run_command(resolve.main, ["--uri", uri])
    assert (code, result["exit_code"]) == (5, 5)


def test_unknown_model_exits_5(sqlite_registry: str, run_command: CommandRunner) -> None:
    code, _ = run_command(resolve.main, ["--uri", "models:/nope@production"])
    assert code == 5


@pytest.mark.usefixtures("two_promotions")
def test_expect_version_mismatch_exits_6(run_command: CommandRunner) -> None:
    code, result = run_command(
        resolve.main, ["--uri", f"models:/{NAME}/Production", "--expect-version", "1"]
    )
    assert (code, result["version"], result["expected_version"]) == (6, "2", "1")

    code, _ = run_command(
        resolve.main, ["--uri", f"models:/{NAME}/Production", "--expect-version", "2"]
    )
    assert code == 0


@pytest.mark.usefixtures("two_promotions")
def test_dotenv_collects_variables_for_later_ci_jobs(
    run_command: CommandRunner, tmp_path: Path
) -> None:
    dotenv = tmp_path / "deploy.env"
    run_command(resolve.main, ["--uri", f"models:/{NAME}@production", "--dotenv", str(dotenv)])
    run_command(
        resolve.main,
        ["--uri", f"models:/{NAME}@previous", "--dotenv", str(dotenv), "--dotenv-var", "PREV"],
    )
    assert dotenv.read_text() == "MODEL_VERSION=2\nPREV=1\n"


@pytest.mark.usefixtures("two_promotions")
def test_bad_dotenv_variable_name_is_a_usage_error(
    run_command: CommandRunner, tmp_path: Path
) -> None:
    argv = ["--uri", f"models:/{NAME}/1", "--dotenv", str(tmp_path / "x"), "--dotenv-var", "A=B"]
    code, _ = run_command(resolve.main, argv)
    assert code == 2
    assert not (tmp_path / "x").exists()
