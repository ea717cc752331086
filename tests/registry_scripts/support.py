"""Constants and process helpers shared by the registry tests (fixtures live in conftest)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from registry_scripts._registration import register_model_version
from registry_scripts.train import MODEL_NAME, train_demo_model
from tests.support.ports import free_port
from tests.support.processes import start_process, stop_process
from tests.support.waiting import wait_ready


class DemoTraining(TypedDict):
    """Arguments of train_demo_model."""

    n_rows: int
    n_estimators: int


# Small enough to train in about a second, good enough to clear TEST_FLOOR (AUC ~0.71),
# while the deliberately bad model (shuffled labels) scores ~0.5.
DEMO_TRAINING: DemoTraining = {"n_rows": 3000, "n_estimators": 60}
TEST_FLOOR = "0.65"
# Seen taking 10-45 s on two busy cores.
MLFLOW_SERVER_START_SECONDS = 120.0
# Arguments that get each command as far as its first registry call.
FIRST_CALL_ARGS = {
    "register": ["--model-uri", "models:/m-0123456789abcdef0123456789abcdef"],
    "validate": ["--version", "1"],
    "promote": ["--version", "1"],
    "rollback": [],
    "resolve": ["--uri", f"models:/{MODEL_NAME}@production"],
    "status": [],
    "train": ["--if-missing"],
    "export": ["--model-uri", f"models:/{MODEL_NAME}/Production", "--output", "model"],
}


# The `run_command` fixture: (a command's main, its argv) -> (exit code, its JSON line).
CommandRunner = Callable[[Callable[[Sequence[str] | None], int], Sequence[str]], tuple[int, Any]]


def production(client: MlflowClient) -> tuple[str | None, list[str]]:
    """The `production` alias and the versions in stage Production: they must agree."""
    staged = [
        str(v.version)
        for v in client.search_model_versions(f"name = '{MODEL_NAME}'")
        if v.current_stage == "Production"
    ]
    alias = client.get_registered_model(MODEL_NAME).aliases.get("production")
    return (None if alias is None else str(alias)), staged


class LoggedModelRef(NamedTuple):
    """A model logged in the current registry: its run and its models:/m-<id> URI."""

    run_id: str
    model_uri: str


def log_tiny_sklearn_model() -> LoggedModelRef:
    """Log a real (tiny) scikit-learn model in a new run of the current registry."""
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
    return LoggedModelRef(run.info.run_id, info.model_uri)


def log_demo_model(*, bad: bool = False) -> LoggedModelRef:
    """Train and log the demo model in the current registry (deliberately bad with bad=True)."""
    result = train_demo_model(shuffle_labels=bad, **DEMO_TRAINING)
    return LoggedModelRef(result.run_id, result.model_uri)


def register_demo_version(client: MlflowClient, *, bad: bool = False) -> str:
    """Train the demo model in the current registry (deliberately bad with bad=True),
    register it, and return the version."""
    run_id, model_uri = log_demo_model(bad=bad)
    return str(register_model_version(client, model_uri, MODEL_NAME, run_id=run_id).version)


def start_command(
    command: str, argv: list[str], env: dict[str, str], cwd: Path
) -> subprocess.Popen[str]:
    """`python -m registry_scripts.<command> argv`, its output piped (text)."""
    return subprocess.Popen(
        [sys.executable, "-m", f"registry_scripts.{command}", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running_mlflow_server(workdir: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts; yields its URL.

    It runs in its own process group so that its workers are stopped with it.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "mlflow-server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{workdir / 'server.db'}",
        "--serve-artifacts",
        "--artifacts-destination", str(workdir / "artifacts"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    process = start_process(
        command, log_path, {}, cwd=workdir, inherit=lambda key: not key.startswith("MLFLOW_")
    )
    try:
        wait_ready(
            f"{url}/health",
            MLFLOW_SERVER_START_SECONDS,
            alive=lambda: process.poll() is None,
            detail=lambda: log_path.read_text(errors="replace")[-2000:],
        )
        yield url
    finally:
        stop_process(process, 20)
