"""Both servers on one model directory: ours by the production command, MLflow's own.

Each runs as a real process on 127.0.0.1 with one worker; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import PROJECT_ROOT, free_port

BIN = Path(sys.executable).parent
START_SECONDS = 120.0


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _start(name: str, command: list[str], env: dict[str, str], log_path: Path, port: int) -> Server:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OMP_NUM_THREADS", "PROMETHEUS_MULTIPROC_DIR", "MODEL_URI", "BATCHING"}
    }
    environment.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log_path)


def start_ours(model_dir: Path, work: Path, **env: str) -> Server:
    port = free_port()
    return _start(
        "ours",
        [str(BIN / "gunicorn"), "--config", "python:app.gunicorn_conf", "app.main:create_app()"],
        {
            "MODEL_URI": str(model_dir),
            "PORT": str(port),
            "WORKERS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
            **env,
        },
        work / "ours.log",
        port,
    )


def start_mlflow(model_dir: Path, work: Path) -> Server:
    port = free_port()
    return _start(
        "mlflow",
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        {"PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
        work / "mlflow.log",
        port,
    )


def wait_answering(server: Server, path: str, seconds: float = START_SECONDS) -> int:
    """Poll `path` until it answers at all; its status (ours may stay 503 when not ready)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            return httpx.get(f"{server.base_url}{path}", timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.25)
    raise AssertionError(f"{server.name} did not answer in {seconds} s:\n{server.log_tail()}")


def wait_ready(server: Server, path: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if wait_answering(server, path, deadline - time.monotonic()) == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{server.name} {path} not 200 in {seconds} s:\n{server.log_tail()}")


def wait_logged(server: Server, text: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in server.log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{server.name} never logged {text!r}:\n{server.log_tail()}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=15)


@contextmanager
def server_pair(
    model_dir: Path, work: Path, *, ready: bool = True
) -> Iterator[tuple[Server, Server]]:
    """Ours and MLflow's on the same directory, both up, both stopped afterwards.

    `ready=False`: ours is expected to serve but stay not ready (a failing warm-up), so
    only its liveness is awaited, then the warm-up's end in its log.
    """
    work.mkdir(parents=True, exist_ok=True)
    ours = start_ours(model_dir, work)
    reference = start_mlflow(model_dir, work)
    try:
        wait_ready(reference, "/ping")
        if ready:
            wait_ready(ours, "/readyz")
        else:
            wait_ready(ours, "/livez")
            wait_logged(ours, "stays not ready")
        yield ours, reference
    finally:
        stop(ours)
        stop(reference)
