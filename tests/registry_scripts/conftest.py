"""Fixtures for the registry commands: real registries (SQLite, `mlflow server`), real models."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from model_fetch.retries import HTTP_DEFAULTS
from tests.registry_scripts.support import (
    CommandRunner,
    register_demo_version,
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


@pytest.fixture(scope="session")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow database: creating one costs ~2 s, copying it ~nothing."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_registered_models()
    return path


@pytest.fixture
def sqlite_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_registry_db: Path
) -> Iterator[str]:
    """A fresh embedded (SQLite) registry under tmp_path, made current."""
    shutil.copyfile(empty_registry_db, tmp_path / "mlflow.db")
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
def log_tiny_model(sqlite_registry: str) -> Callable[[], tuple[str, str]]:
    """Log a real (tiny) scikit-learn model in a new run; returns (run_id, models:/m-<id>)."""

    def log() -> tuple[str, str]:
        rng = np.random.default_rng(0)
        features = pd.DataFrame({"a": rng.random(40), "b": rng.random(40)})
        labels = (features["a"] > 0.5).astype(int)
        with mlflow.start_run() as run, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # integer-column schema hint
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(features, labels),
                name="model",
                input_example=features.head(2),
                # Naming the requirements skips MLflow's inference subprocess (~5 s).
                pip_requirements=["scikit-learn"],
            )
        return run.info.run_id, info.model_uri

    return log


@pytest.fixture
def register_versions(
    client: MlflowClient, log_tiny_model: Callable[[], tuple[str, str]]
) -> Callable[[int], list[str]]:
    """Register `count` tiny model versions of `credit-risk-scoring`; returns their numbers."""
    from registry_scripts._registration import register_model_version

    def register(count: int) -> list[str]:
        versions = []
        for _ in range(count):
            run_id, model_uri = log_tiny_model()
            model_version = register_model_version(
                client, model_uri, "credit-risk-scoring", run_id=run_id
            )
            versions.append(str(model_version.version))
        return versions

    return register


@pytest.fixture
def register_demo(client: MlflowClient) -> Callable[..., str]:
    """register_demo_version bound to the test's SQLite registry."""

    def register(*, bad: bool = False) -> str:
        return register_demo_version(client, bad=bad)

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
