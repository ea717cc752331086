"""Start, probe and stop the servers under test, each as its own process group: ours, MLflow's,
and the HTTP floor.

Ours is the production command as the tests start it, and every server is started, awaited
and stopped by the tests' harness (tests/support: production, processes, ports, waiting):
one harness, so what a benchmark measures is what the tests check. What stays here is the
benchmarks' own: the other two servers, start-ups that overlap, readiness of every worker,
and an idle machine before measuring.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.proctree import wait_idle
from tests.support import PROJECT_ROOT as PROJECT_ROOT  # bench's modules take it from here
from tests.support.ports import free_port as free_port  # and this
from tests.support.processes import start_process, stop_group
from tests.support.production import NOT_INHERITED, PRODUCTION_COMMAND
from tests.support.waiting import wait_until

VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
OURS = "ours"
THEIRS = "theirs"
FLOOR = "floor"
# The production command's worker class (app/gunicorn_conf.py), which the floor shares.
PRODUCTION_WORKER_CLASS = "app.server.worker.ServingWorker"
# Environment variables shown with the command lines in the report.
_SHOWN_ENV = ("MODEL_URI", "MLFLOW_TRACKING_URI", "HOST", "PORT", "WORKERS")


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


def server_env(tracking_uri: str, scratch: Path) -> dict[str, str]:
    # What the tests keep from their environment, ours keeps here. So each server runs with
    # its own OMP_NUM_THREADS default: ours sets 1 in gunicorn_conf, MLflow's leaves native
    # thread pools at one thread per core.
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
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
    env = server_env(tracking_uri, scratch) | {
        "MODEL_URI": model_uri,
        "HOST": HOST,
        "PORT": str(port),
        "WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    return ServerSpec(
        OURS, workers, port, list(PRODUCTION_COMMAND), env, "/readyz", ready_gauge="model_ready"
    )


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
    return ServerSpec(THEIRS, workers, port, command, server_env(tracking_uri, scratch), "/ping")


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
    env = server_env("", scratch) | {"WORKERS": str(workers), "PORT": str(port)}
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


def _first_error(path: Path, lines: int = 14) -> str:
    """From the log's first traceback or error on (where a failed start-up says why), or
    its end when it has none."""
    text = path.read_text(errors="replace").splitlines()
    for index, line in enumerate(text):
        if "Traceback" in line or "Error" in line:
            return "\n".join(text[index : index + lines])
    return _tail(path, lines)


def stop(server: Server, grace_s: float = 20.0) -> None:
    """SIGTERM the whole group, SIGKILL what is left after `grace_s`; bounded throughout."""
    stop_group(server.process, grace_s)


def _start(spec: ServerSpec, log_dir: Path) -> Server:
    log_path = log_dir / f"{spec.name}-{spec.workers}w-{spec.port}.log"
    # spec.env is the whole environment (see _base_env): nothing more is inherited.
    process = start_process(
        spec.command, log_path, spec.env, cwd=spec.cwd, inherit=lambda key: False
    )
    return Server(spec, process, log_path)


def _wait_ready(server: Server, deadline: float, start_limit_s: float) -> None:
    """Until every worker of the server is ready; fails at once if it exits, and at
    `deadline` (the end of the `start_limit_s` all the servers share) if it is not ready."""
    wait_until(
        lambda: _is_ready(server.spec),
        max(0.0, deadline - time.monotonic()),
        f"{server.spec.name} ready (the servers share {start_limit_s:.0f} s to start)",
        interval=0.25,
        alive=lambda: server.process.poll() is None,
        detail=lambda: _tail(server.log_path),
    )


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
def serving_each(
    specs: list[ServerSpec], log_dir: Path, start_limit_s: float = 300.0
) -> Iterator[tuple[list[Server], dict[str, str]]]:
    """As `serving_together`, but a server that exits or is not ready in time is stopped and
    reported (its name: why, with the end of its log) while the others run: a peer that
    cannot start is a finding, not the end of the run."""
    started: list[Server] = []
    failed: dict[str, str] = {}
    try:
        for spec in specs:
            started.append(_start(spec, log_dir))
        deadline = time.monotonic() + start_limit_s
        ready = []
        for server in started:
            try:
                _wait_ready(server, deadline, start_limit_s)
            except AssertionError as error:
                why = str(error).splitlines()[0]
                failed[server.spec.name] = f"{why}\n{_first_error(server.log_path)}"
                stop(server)
            else:
                ready.append(server)
        for server in ready:
            wait_idle(server.pid)
        try:
            yield ready, failed
        except Exception:
            _report_dead(ready)
            raise
    finally:
        for server in started:
            stop(server)


@contextmanager
def serving(spec: ServerSpec, log_dir: Path, start_limit_s: float = 180.0) -> Iterator[Server]:
    """Run the server until the block ends; yields once it is ready and idle."""
    with serving_together([spec], log_dir, start_limit_s) as (server,):
        yield server
