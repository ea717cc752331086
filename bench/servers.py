"""Start, probe and stop the servers under test, each as its own process group: ours, MLflow's,
and the HTTP floor."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.proctree import wait_idle

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
OURS = "ours"
THEIRS = "theirs"
FLOOR = "floor"
# The production command's worker class (app/gunicorn_conf.py), which the floor shares.
PRODUCTION_WORKER_CLASS = "app.worker.ServingWorker"
# Environment variables shown with the command lines in the report.
_SHOWN_ENV = ("MODEL_URI", "MLFLOW_TRACKING_URI", "HOST", "PORT", "WORKERS")


class ServerStartError(RuntimeError):
    """A server exited or did not become ready in time."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    workers: int
    port: int
    command: list[str]
    env: dict[str, str]
    ready_path: str
    # A Prometheus gauge that sums to the number of ready workers, when the server has one:
    # a single readiness probe only reaches one worker.
    ready_gauge: str | None = None
    # Where the command runs: another checkout runs that revision's app (bench.overload).
    cwd: Path = PROJECT_ROOT

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def describe(self) -> str:
        """The command line as a shell would take it, with the settings that matter."""
        shown = [f"{key}={shlex.quote(self.env[key])}" for key in _SHOWN_ENV if key in self.env]
        return " ".join([*shown, shlex.join(self.command)])


@dataclass(frozen=True)
class Server:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _base_env(tracking_uri: str, scratch: Path) -> dict[str, str]:
    # Each server runs with its own OMP_NUM_THREADS default: ours sets 1 in gunicorn_conf,
    # MLflow's leaves native thread pools at one thread per core.
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["TMPDIR"] = str(scratch)  # model downloads land in the bench's temporary directory
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def ours_spec(
    model_uri: str, tracking_uri: str, workers: int, port: int, scratch: Path
) -> ServerSpec:
    """The production command, as the image runs it."""
    metrics_dir = scratch / f"metrics-{port}"
    metrics_dir.mkdir(parents=True)
    env = _base_env(tracking_uri, scratch) | {
        "MODEL_URI": model_uri,
        "HOST": HOST,
        "PORT": str(port),
        "WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [
        str(VENV_BIN / "gunicorn"),
        "--config",
        "python:app.gunicorn_conf",
        "app.main:create_app()",
    ]
    return ServerSpec(OURS, workers, port, command, env, "/readyz", ready_gauge="model_ready")


def theirs_spec(
    model_uri: str, tracking_uri: str, workers: int, port: int, scratch: Path
) -> ServerSpec:
    """`mlflow models serve` in the current environment (it runs uvicorn with --workers)."""
    command = [
        str(VENV_BIN / "mlflow"),
        "models",
        "serve",
        "--model-uri",
        model_uri,
        "--env-manager",
        "local",
        "--workers",
        str(workers),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    return ServerSpec(THEIRS, workers, port, command, _base_env(tracking_uri, scratch), "/ping")


def floor_spec(workers: int, port: int, scratch: Path) -> ServerSpec:
    """bench/floor_app.py under Gunicorn with the production worker class: the HTTP floor."""
    command = [
        str(VENV_BIN / "gunicorn"),
        f"--worker-class={PRODUCTION_WORKER_CLASS}",
        f"--workers={workers}",
        f"--bind={HOST}:{port}",
        "--keep-alive=75",  # the production default (KEEPALIVE_SECONDS)
        "--no-control-socket",  # as in production: one per user would be shared
        "bench.floor_app:app",
    ]
    env = _base_env("", scratch) | {"WORKERS": str(workers), "PORT": str(port)}
    env.pop("MLFLOW_TRACKING_URI")
    return ServerSpec(FLOOR, workers, port, command, env, "/ping")


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own URL)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def _gauge_value(exposition: bytes, name: str) -> float | None:
    for line in exposition.decode(errors="replace").splitlines():
        metric, _, value = line.partition(" ")
        if metric == name:
            return float(value)
    return None


def _is_ready(spec: ServerSpec) -> bool:
    status, _ = http_get(spec.url + spec.ready_path)
    if status != 200:
        return False
    if spec.ready_gauge is None:
        return True
    _, exposition = http_get(spec.url + "/metrics")
    ready_workers = _gauge_value(exposition, spec.ready_gauge)
    return ready_workers is not None and ready_workers >= spec.workers


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_group_gone(server: Server, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        server.process.poll()  # reap the leader so it does not linger as a zombie
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def stop(server: Server, grace_s: float = 20.0) -> None:
    """SIGTERM the whole group, SIGKILL what is left after `grace_s`; bounded throughout."""
    # Started with a new session, so the leader's pid is the group id.
    _signal_group(server.pid, signal.SIGTERM)
    if not _wait_group_gone(server, grace_s):
        _signal_group(server.pid, signal.SIGKILL)
        _wait_group_gone(server, 5.0)


def _start(spec: ServerSpec, log_dir: Path) -> Server:
    log_path = log_dir / f"{spec.name}-{spec.workers}w-{spec.port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env=spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(spec, process, log_path)


def _wait_ready(server: Server, deadline: float, start_limit_s: float) -> None:
    spec, process = server.spec, server.process
    while not _is_ready(spec):
        if process.poll() is not None:
            raise ServerStartError(
                f"{spec.name} exited with {process.returncode}:\n{_tail(server.log_path)}"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{spec.name} not ready after {start_limit_s:.0f} s:\n{_tail(server.log_path)}"
            )
        time.sleep(0.25)


def _report_dead(servers: list[Server]) -> None:
    """When a run fails, say which server had exited, with the end of its log (the log is in
    the bench's temporary directory, gone once it ends)."""
    for server in servers:
        if server.process.poll() is not None:
            print(
                f"{server.spec.name} had exited with {server.process.returncode}:\n"
                f"{_tail(server.log_path)}",
                file=sys.stderr,
            )


@contextmanager
def serving_together(
    specs: list[ServerSpec], log_dir: Path, start_limit_s: float = 180.0
) -> Iterator[list[Server]]:
    """Run the servers until the block ends, their start-ups overlapping; yields once every
    one is ready and idle."""
    servers: list[Server] = []
    try:
        for spec in specs:
            servers.append(_start(spec, log_dir))
        deadline = time.monotonic() + start_limit_s
        for server in servers:
            _wait_ready(server, deadline, start_limit_s)
        for server in servers:
            wait_idle(server.pid)
        try:
            yield servers
        except Exception:
            _report_dead(servers)
            raise
    finally:
        for server in servers:
            stop(server)


@contextmanager
def serving(spec: ServerSpec, log_dir: Path, start_limit_s: float = 180.0) -> Iterator[Server]:
    """Run the server until the block ends; yields once it is ready and idle."""
    with serving_together([spec], log_dir, start_limit_s) as (server,):
        yield server
