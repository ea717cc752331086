"""The serving peers: how each is installed, started, addressed and spoken to.

Every peer runs with 2 worker processes and the settings its docs give for production, in
its own virtualenv (.venv-peers/<venv>, built by `make bench-peers` from
bench/peers/requirements-<venv>.txt), on a local directory holding the exported MLflow
model; ours and `mlflow models serve` load the same version from the bench's registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.peers import formats
from bench.servers import (
    HOST,
    OURS,
    ServerSpec,
    free_port,
    ours_spec,
    server_env,
    theirs_spec,
)
from tests.support import PROJECT_ROOT

PEERS_DIR = Path(__file__).parent
MLFLOW = "mlflow"
PEERS_VENV = PROJECT_ROOT / ".venv-peers"
# The name the V2 servers (MLServer, KServe) serve the model under: the URL names it.
V2_MODEL_NAME = "model"
# MLServer's adaptive batching, when on: up to one request per connection of the busiest
# cell in a batch, waiting at most about one demo predict (its docs leave both to
# experiment, and enable nothing by default).
MLSERVER_MAX_BATCH_SIZE = 64
MLSERVER_MAX_BATCH_TIME_S = 0.005
# Packages whose versions the report shows, per virtualenv.
VERSIONED = {
    "ours": ("mlflow", "fastapi", "uvicorn", "gunicorn", "pandas", "numpy", "xgboost-cpu"),
    "mlserver": ("mlserver", "mlserver-mlflow", "mlflow", "fastapi", "uvicorn", "pandas", "numpy"),
    "bentoml": ("bentoml", "mlflow", "starlette", "uvicorn", "pandas", "numpy"),
    "kserve": ("kserve", "mlflow", "fastapi", "uvicorn", "pandas", "numpy"),
}


class PeerUnavailableError(RuntimeError):
    """A peer that cannot run here: not installed, or its preparation failed. Reported."""


@dataclass(frozen=True)
class Placement:
    """Where one peer serves one model in this run."""

    model_uri: str  # for ours and mlflow's, from the bench's registry
    tracking_uri: str
    model_dir: Path  # the same model exported: for the peers that load a directory
    workers: int
    scratch: Path  # this peer's own directory for settings, stores and logs


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    protocol: str
    venv: str | None  # .venv-peers/<venv>; None: ours, in the project's environment
    path: str  # where predictions are POSTed
    body: Callable[[pd.DataFrame], bytes]
    rows: Callable[[bytes], list[dict[str, Any]]]
    spec: Callable[[Placement], ServerSpec]

    def check_installed(self) -> None:
        if self.venv is None:
            return
        if not (PEERS_VENV / self.venv / ".installed").is_file():
            log = PEERS_VENV / f"{self.venv}.log"
            tail = _tail(log) if log.is_file() else "no install log: run `make bench-peers`"
            raise PeerUnavailableError(f"{self.venv} is not installed in .venv-peers: {tail}")


def _tail(path: Path, lines: int = 6) -> str:
    kept = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def venv_bin(venv: str) -> Path:
    return PEERS_VENV / venv / "bin"


def _peer_env(venv: str, placement: Placement) -> dict[str, str]:
    env = server_env("", placement.scratch)
    env.pop("MLFLOW_TRACKING_URI")  # the peers load a directory, not a registry
    env["PATH"] = f"{venv_bin(venv)}:{env['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    return env


def _ours(placement: Placement) -> ServerSpec:
    return ours_spec(
        placement.model_uri,
        placement.tracking_uri,
        placement.workers,
        free_port(),
        placement.scratch,
    )


def _mlflow(placement: Placement) -> ServerSpec:
    spec = theirs_spec(
        placement.model_uri,
        placement.tracking_uri,
        placement.workers,
        free_port(),
        placement.scratch,
    )
    return replace(spec, name=MLFLOW)


def _mlserver(placement: Placement, *, batching: bool) -> ServerSpec:
    """`mlserver start` on a folder with settings.json (HTTP on 127.0.0.1, the gRPC and
    metrics servers on free ports, `parallel_workers` inference processes) and the
    model's model-settings.json (the MLflow runtime; adaptive batching on or off)."""
    folder = placement.scratch / "mlserver"
    folder.mkdir(parents=True)
    port = free_port()
    settings = {
        "host": HOST,
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": placement.workers,
    }
    model_settings: dict[str, Any] = {
        "name": V2_MODEL_NAME,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(placement.model_dir)},
    }
    if batching:
        model_settings |= {
            "max_batch_size": MLSERVER_MAX_BATCH_SIZE,
            "max_batch_time": MLSERVER_MAX_BATCH_TIME_S,
        }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    name = "mlserver-batching" if batching else "mlserver"
    return ServerSpec(
        name,
        placement.workers,
        port,
        [str(venv_bin("mlserver") / "mlserver"), "start", str(folder)],
        _peer_env("mlserver", placement),
        f"/v2/models/{V2_MODEL_NAME}/ready",
    )


def _bentoml(placement: Placement) -> ServerSpec:
    """`bentoml serve` on bench/peers/bentoml_service.py, after `bentoml.mlflow.import_model`
    into a model store of its own (BENTOML_HOME) in the bench's temporary directory."""
    env = _peer_env("bentoml", placement) | {
        "BENTOML_HOME": str(placement.scratch / "bentoml-home"),
        "BENCH_BENTO_MODEL": "model:latest",
        "BENCH_WORKERS": str(placement.workers),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    service = PEERS_DIR / "bentoml_service.py"
    imported = subprocess.run(
        [str(venv_bin("bentoml") / "python"), str(service), "model", str(placement.model_dir)],
        env=env,
        cwd=PEERS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if imported.returncode != 0:
        raise PeerUnavailableError(
            f"bentoml.mlflow.import_model failed: {imported.stderr.strip()[-600:]}"
        )
    port = free_port()
    command = [
        str(venv_bin("bentoml") / "bentoml"),
        "serve",
        "bentoml_service:MlflowModelService",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    return ServerSpec("bentoml", placement.workers, port, command, env, "/readyz", cwd=PEERS_DIR)


def _kserve(placement: Placement) -> ServerSpec:
    """bench/peers/kserve_server.py: a kserve.Model over mlflow.pyfunc.load_model, under
    KServe's ModelServer with `--workers`."""
    port = free_port()
    command = [
        str(venv_bin("kserve") / "python"),
        str(PEERS_DIR / "kserve_server.py"),
        f"--model_name={V2_MODEL_NAME}",
        f"--model_dir={placement.model_dir}",
        f"--http_port={port}",
        f"--grpc_port={free_port()}",
        f"--workers={placement.workers}",
    ]
    return ServerSpec(
        "kserve",
        placement.workers,
        port,
        command,
        _peer_env("kserve", placement),
        f"/v2/models/{V2_MODEL_NAME}/ready",
    )


MLFLOW_JSON = "MLflow JSON (dataframe_split)"
V2_JSON = "V2 inference protocol JSON"
PEERS = (
    Peer(OURS, "ours", MLFLOW_JSON, None, "/invocations", formats.mlflow_body,
         formats.mlflow_rows, _ours),
    Peer(MLFLOW, "mlflow models serve", MLFLOW_JSON, None, "/invocations",
         formats.mlflow_body, formats.mlflow_rows, _mlflow),
    Peer("mlserver", "MLServer", V2_JSON, "mlserver", f"/v2/models/{V2_MODEL_NAME}/infer",
         formats.v2_body, formats.v2_rows, lambda placement: _mlserver(placement, batching=False)),
    Peer("mlserver-batching", "MLServer, adaptive batching", V2_JSON, "mlserver",
         f"/v2/models/{V2_MODEL_NAME}/infer", formats.v2_body, formats.v2_rows,
         lambda placement: _mlserver(placement, batching=True)),
    Peer("bentoml", "BentoML", "BentoML JSON (DataFrame records)", "bentoml", "/predict",
         formats.bentoml_body, formats.bentoml_rows, _bentoml),
    Peer("kserve", "KServe", V2_JSON, "kserve", f"/v2/models/{V2_MODEL_NAME}/infer",
         formats.v2_body, formats.v2_rows, _kserve),
)  # fmt: skip


def versions(venv: str | None) -> dict[str, str]:
    """The versions of a peer's packages, read by its own interpreter."""
    python = venv_bin(venv) / "python" if venv else Path(sys.executable)
    packages = VERSIONED[venv or "ours"]
    script = (
        "import json, importlib.metadata as m, sys\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return 'not installed'\n"
        "print(json.dumps({p: v(p) for p in sys.argv[1:]}))"
    )
    completed = subprocess.run(
        [str(python), "-c", script, *packages], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {}
    found: dict[str, str] = json.loads(completed.stdout)
    return found
