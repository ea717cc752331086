"""The production command, started for real: Gunicorn with the app's config on 127.0.0.1.

Shared by every test that needs the real server (faults, metrics, fuzzing, Prometheus,
the canary analysis, conformance) and by the benchmarks (bench/servers.py starts it with
the same command and environment). Every wait is bounded in time. It imports neither
pytest nor MLflow, so a benchmark can import it cheaply.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import processes
from tests.support.ports import free_port
from tests.support.waiting import wait_ready as wait_answering_200
from tests.support.waiting import wait_until

if TYPE_CHECKING:  # at run time it would import the training code (MLflow, XGBoost)
    from tests.support.demo import RegisteredDemo

PRODUCTION_COMMAND = [
    str(Path(sys.executable).with_name("gunicorn")),
    "--config",
    "python:app.gunicorn_conf",
    "app.main:create_app()",
]
# Set by the image or by each test, never taken from the environment the tests run in.
NOT_INHERITED = frozenset({"OMP_NUM_THREADS", "PROMETHEUS_MULTIPROC_DIR", "MODEL_URI", "BATCHING"})


@dataclass
class RunningServer:
    """A server process a test started, in its own process group, logging to a file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    ops_url: str = ""  # the ops listener (probes, /metrics) in the master, when started

    def kill(self) -> None:
        """SIGKILL the master and its workers (the whole process group), then reap."""
        processes.kill_group(self.process)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a traceback line is allowed; it is not a JSON record
        return lines

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def post_headers_only(self, content_length: int) -> bytes:
        """A scoring request announcing `content_length` bytes and sending none: what the
        server answers before the body (which never comes) would have ended it."""
        host, port = self.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {content_length}\r\n\r\n".encode()
            )
            return connection.recv(65536)

    def wait_for_workers(self, count: int, exclude: set[int], seconds: float) -> set[int]:
        """`count` workers other than `exclude` (replacements of killed ones), in `seconds`."""
        found: set[int] = set()

        def enough() -> bool:
            found.clear()
            found.update(self.worker_pids() - exclude)
            return len(found) >= count

        wait_until(enough, seconds, f"{count} new workers", interval=0.1)
        return found

    def metric(self, name: str, *, on_main_port: bool = False, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`, as /metrics (all
        workers merged) answers now: the ops listener's, or a worker's on the main port."""
        url = self.base_url if on_main_port else self.ops_url
        text = httpx.get(f"{url}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def wait_in_flight(self, count: int, seconds: float) -> None:
        """Until the workers hold at least `count` requests inside the app: the point a
        test's concurrent requests have reached, rather than a guess at how long sending
        them takes."""
        wait_until(
            lambda: self.metric("http_requests_in_flight") >= count,
            seconds,
            f"{count} requests in flight",
            interval=0.05,
            alive=self.alive,
        )


class StartServer(Protocol):
    """What the `start` fixture of tests/app gives: start_server on the test registry."""

    def __call__(
        self,
        *,
        workdir: Path | None = None,
        workers: int = 2,
        predict_seconds: float | None = None,
        **env: str,
    ) -> RunningServer: ...


def start_production_command(log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """The production command with `env` as its settings, logging to `log_path`."""
    return processes.start_process(
        PRODUCTION_COMMAND, log_path, env, inherit=lambda key: key not in NOT_INHERITED
    )


def start_server(
    registry: RegisteredDemo, workdir: Path, *, workers: int = 2, **env: str
) -> RunningServer:
    """The production command serving the registry's Production version on free ports;
    `env` overrides any setting, MODEL_URI too."""
    port, ops_port = free_port(), free_port()
    settings = {
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "MODEL_URI": f"models:/{registry.name}/Production",
        "PORT": str(port),
        "OPS_PORT": str(ops_port),
        "WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        **env,
    }
    log_path = workdir / "server.log"
    process = start_production_command(log_path, **settings)
    return RunningServer(
        process, f"http://127.0.0.1:{port}", log_path, f"http://127.0.0.1:{ops_port}"
    )


def wait_ready(server: RunningServer, seconds: float = 90.0) -> None:
    """Until the pod is ready: every worker warmed up (the ops listener's /readyz)."""
    wait_answering_200(
        f"{server.ops_url}/readyz", seconds, alive=server.alive, detail=server.log_tail
    )


def stop(server: RunningServer, seconds: float = 40.0) -> int:
    """SIGTERM to the master, as the kubelet sends it, and its exit code."""
    return processes.stop_process(server.process, seconds, group=False)
