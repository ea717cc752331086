"""Constants and process helpers shared by the registry tests (fixtures live in conftest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient

from registry_scripts._registration import register_model_version
from registry_scripts.train import MODEL_NAME, train_demo_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Small enough to train in about a second, good enough to clear TEST_FLOOR (AUC ~0.71),
# while the deliberately bad model (shuffled labels) scores ~0.5.
DEMO_TRAINING: dict[str, int] = {"n_rows": 3000, "n_estimators": 60}
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


def production(client: MlflowClient) -> tuple[str | None, list[str]]:
    """The `production` alias and the versions in stage Production: they must agree."""
    staged = [
        str(v.version)
        for v in client.search_model_versions(f"name = '{MODEL_NAME}'")
        if v.current_stage == "Production"
    ]
    alias = client.get_registered_model(MODEL_NAME).aliases.get("production")
    return (None if alias is None else str(alias)), staged


def register_demo_version(client: MlflowClient, *, bad: bool = False) -> str:
    """Train the demo model in the current registry (deliberately bad with bad=True),
    register it, and return the version."""
    result = train_demo_model(shuffle_labels=bad, **DEMO_TRAINING)
    version = register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
    return str(version.version)


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_mlflow_server(workdir: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts; yields its URL.

    It runs in its own process group so that its workers are stopped with it.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "mlflow-server.log").open("wb")
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{workdir / 'server.db'}",
        "--serve-artifacts",
        "--artifacts-destination", str(workdir / "artifacts"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + MLFLOW_SERVER_START_SECONDS
        while not _answers(f"{url}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not become healthy (exit code {process.poll()}): "
                    + (workdir / "mlflow-server.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
