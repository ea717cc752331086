"""Fixtures for the registry commands: real registries (SQLite, `mlflow server`), real models."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from model_fetch.retries import HTTP_DEFAULTS
from registry_scripts._registration import register_model_version
from registry_scripts.train import MODEL_NAME
from tests.registry_scripts.support import (
    CommandRunner,
    LoggedModelRef,
    log_demo_model,
    log_tiny_sklearn_model,
    running_mlflow_server,
)
from tests.support import PROJECT_ROOT

CI_IDENTITY_VARIABLES = ("GITLAB_USER_LOGIN", "CI_PIPELINE_URL", "CI_PIPELINE_ID")


@pytest.fixture(autouse=True)
def _restore_http_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run in-process write MLflow HTTP defaults into os.environ; undo that."""
    for key, value in HTTP_DEFAULTS.items():
        monkeypatch.setenv(key, os.environ.get(key, value))


def _use_registry(uri: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make `uri` current for MLflow, our commands and their subprocesses, then undo it.

    The working directory moves to `workdir`: the SQLite store puts new experiments'
    artifacts in ./mlruns. A fresh experiment replaces the active experiment id a previous
    test left in MLflow's globals.
    """
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for key in CI_IDENTITY_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("registry-tests")
    yield uri
    # None restores MLflow's default; its annotation leaves None out.
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RegistryTemplate:
    """A migrated registry database holding models logged once per session.

    Copying the database costs ~nothing; logging a model costs 0.2 s (tiny) to 1.5 s (demo),
    and most tests only need versions of some model. The artifacts stay in the template's
    directory, which tests only read.
    """

    database: Path
    tiny_model: LoggedModelRef
    demo_model: LoggedModelRef
    bad_demo_model: LoggedModelRef


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> RegistryTemplate:
    workdir = tmp_path_factory.mktemp("template")
    database = workdir / "mlflow.db"
    with pytest.MonkeyPatch.context() as monkeypatch:
        for _ in _use_registry(f"sqlite:///{database}", workdir, monkeypatch):
            template = RegistryTemplate(
                database=database,
                tiny_model=log_tiny_sklearn_model(),
                demo_model=log_demo_model(),
                bad_demo_model=log_demo_model(bad=True),
            )
    return template


@pytest.fixture
def sqlite_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_template: RegistryTemplate
) -> Iterator[str]:
    """A fresh embedded (SQLite) registry under tmp_path, made current: no registered model
    yet, the template's logged models ready to register."""
    shutil.copyfile(registry_template.database, tmp_path / "mlflow.db")
    yield from _use_registry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `mlflow server` per session (it takes 10-17 s to start); yields its URL."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture
def server_registry(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The session's `mlflow server` made current. Its state outlives the test."""
    yield from _use_registry(mlflow_server, tmp_path, monkeypatch)


@pytest.fixture
def client(sqlite_registry: str) -> MlflowClient:
    return MlflowClient(sqlite_registry)


@pytest.fixture
def log_tiny_model(sqlite_registry: str) -> Callable[[], LoggedModelRef]:
    """Log a real (tiny) scikit-learn model in a new run; returns (run_id, models:/m-<id>)."""
    return log_tiny_sklearn_model


@pytest.fixture
def register_versions(
    client: MlflowClient, registry_template: RegistryTemplate
) -> Callable[[int], list[str]]:
    """Register `count` versions of `credit-risk-scoring` (the template's tiny model);
    returns their numbers."""

    def register(count: int) -> list[str]:
        run_id, model_uri = registry_template.tiny_model
        return [
            str(register_model_version(client, model_uri, MODEL_NAME, run_id=run_id).version)
            for _ in range(count)
        ]

    return register


@pytest.fixture
def register_demo(client: MlflowClient, registry_template: RegistryTemplate) -> Callable[..., str]:
    """Register a version of the demo model (the deliberately bad one with bad=True)."""

    def register(*, bad: bool = False) -> str:
        run_id, model_uri = (
            registry_template.bad_demo_model if bad else registry_template.demo_model
        )
        return str(register_model_version(client, model_uri, MODEL_NAME, run_id=run_id).version)

    return register


@pytest.fixture
def run_command(capsys: pytest.CaptureFixture[str]) -> CommandRunner:
    """Run a command's main() in-process; returns (exit code, the parsed JSON line)."""

    def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str]) -> tuple[int, Any]:
        capsys.readouterr()
        code = main(list(argv))
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1, f"expected one JSON line on stdout, got {lines!r}"
        return code, json.loads(lines[0])

    return run


@pytest.fixture
def command_env() -> Callable[..., dict[str, str]]:
    """Environment for `python -m registry_scripts...` run outside the project root."""

    def build(**overrides: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **overrides}

    return build
