"""Seldon MLServer with its MLflow runtime, serving several model directories at once.

It runs from its own virtualenv, .venv-peers/mlserver (the Makefile builds it from
bench/peers/requirements-mlserver.txt, for `make test` and `make bench-peers` alike),
on 127.0.0.1 with its inference in its main process (`parallel_workers` 0): one process
for every model of the run. Every wait is bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.support import PROJECT_ROOT
from tests.support.ci import missing
from tests.support.ports import free_port
from tests.support.processes import start_process
from tests.support.production import NOT_INHERITED, RunningServer
from tests.support.waiting import wait_ready

MLSERVER_VENV = PROJECT_ROOT / ".venv-peers" / "mlserver"
START_SECONDS = 180.0


@dataclass(frozen=True)
class Served:
    """One model as MLServer serves it: the name in its URL, its version, its directory."""

    name: str
    version: str | None
    directory: Path


def require_mlserver() -> Path:
    """MLServer's executable; a failure under CI, a skip elsewhere, when not installed."""
    if not (MLSERVER_VENV / ".installed").is_file():
        missing("MLServer is not installed in .venv-peers/mlserver: `make test` builds it")
    return MLSERVER_VENV / "bin" / "mlserver"


def start_mlserver(models: list[Served], work: Path) -> RunningServer:
    """`mlserver start` on a folder holding settings.json and one model-settings.json per
    model; returns once every model answers ready."""
    executable = require_mlserver()
    folder = work / "mlserver"
    folder.mkdir(parents=True)
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    for model in models:
        model_settings: dict[str, object] = {
            "name": model.name,
            "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": str(model.directory)},
        }
        if model.version:
            model_settings["parameters"] = {"uri": str(model.directory), "version": model.version}
        (folder / model.name).mkdir()
        (folder / model.name / "model-settings.json").write_text(json.dumps(model_settings))
    log_path = work / "mlserver.log"
    process = start_process(
        [str(executable), "start", str(folder)],
        log_path,
        {"PATH": f"{executable.parent}:/usr/bin:/bin"},
        inherit=lambda key: key not in NOT_INHERITED and key != "VIRTUAL_ENV",
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        for model in models:
            wait_ready(
                f"{server.base_url}/v2/models/{model.name}/ready",
                START_SECONDS,
                alive=server.alive,
                detail=server.log_tail,
            )
    except BaseException:
        server.kill()
        raise
    return server
