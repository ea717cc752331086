"""Both servers on one model directory: ours by the production command, MLflow's own.

Each runs as a real process on 127.0.0.1 with one worker; every wait is bounded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import start_process
from tests.support.production import NOT_INHERITED, RunningServer, start_production_command
from tests.support.waiting import wait_ready, wait_until

BIN = Path(sys.executable).parent
START_SECONDS = 120.0


def wait_answering_200(server: RunningServer, path: str) -> None:
    """Until `path` answers 200 (ours may answer 503 while not ready)."""
    url = f"{server.base_url}{path}"
    wait_ready(url, START_SECONDS, alive=server.alive, detail=server.log_tail)


def wait_logged(server: RunningServer, text: str) -> None:
    wait_until(
        lambda: text in server.log_path.read_text(errors="replace"),
        START_SECONDS,
        f"{server.log_path.name} showing {text!r}",
        detail=server.log_tail,
    )


def start_ours(model: Path | str, work: Path, **env: str) -> RunningServer:
    """`model`: a model directory, or any MLflow URI (models:/NAME/VERSION)."""
    port = free_port()
    log_path = work / "ours.log"
    process = start_production_command(
        log_path,
        MODEL_URI=str(model),
        PORT=str(port),
        WORKERS="1",
        PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"),
        **env,
    )
    return RunningServer(process, f"http://127.0.0.1:{port}", log_path)


def start_mlflow(model_dir: Path, work: Path) -> RunningServer:
    port = free_port()
    log_path = work / "mlflow.log"
    command = [
        str(BIN / "mlflow"), "models", "serve",
        "-m", str(model_dir),
        "--env-manager", "local",
        "-h", "127.0.0.1",
        "-p", str(port),
        "-w", "1",
    ]  # fmt: skip
    process = start_process(
        command,
        log_path,
        {"PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
        inherit=lambda key: key not in NOT_INHERITED,
    )
    return RunningServer(process, f"http://127.0.0.1:{port}", log_path)


@contextmanager
def server_pair(
    model_dir: Path, work: Path, *, ready: bool = True
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Ours and MLflow's on the same directory, both up, both stopped afterwards.

    `ready=False`: ours is expected to serve but stay not ready (a failing warm-up), so
    only its liveness is awaited, then the warm-up's end in its log.
    """
    work.mkdir(parents=True, exist_ok=True)
    ours = start_ours(model_dir, work)
    reference = start_mlflow(model_dir, work)
    try:
        wait_answering_200(reference, "/ping")
        if ready:
            wait_answering_200(ours, "/readyz")
        else:
            wait_answering_200(ours, "/livez")
            wait_logged(ours, "stays not ready")
        yield ours, reference
    finally:
        ours.kill()
        reference.kill()
