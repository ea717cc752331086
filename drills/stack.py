"""The local production-like stack a drill runs against, each part a real process on
127.0.0.1: `mlflow server` (the registry), the production command serving
models:/NAME/Production from it, Prometheus loading ops/prometheus/alerts.yml as shipped and
scraping the ops port, and Alertmanager routing every alert to the drill's receiver.

Processes are started and stopped by the tests' harness (tests/support), the one the tests
and the benchmarks use: what a drill measures is what the tests check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from drills.receiver import AlertLog, running_receiver
from tests.support import PROJECT_ROOT
from tests.support.ports import free_port
from tests.support.processes import start_process, stop_group
from tests.support.production import RunningServer, start_production_command
from tests.support.waiting import wait_ready

RULES = PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml"
SHIPPED_PROMETHEUS_CONFIG = PROJECT_ROOT / "ops" / "prometheus" / "prometheus.yml"
JOB = "model-serving"
MLFLOW_START_SECONDS = 90.0
SERVER_START_SECONDS = 120.0
# Alertmanager's route: notify as soon as an alert group appears (Alertmanager's default
# group_wait is 30 s; an operator who keeps it adds those 30 s to every MTTD below).
ALERTMANAGER_GROUP_WAIT = "1s"


@dataclass(frozen=True)
class Intervals:
    """How often Prometheus scrapes and evaluates the rules."""

    scrape: str
    evaluation: str


def shipped_intervals() -> Intervals:
    """The intervals of ops/prometheus/prometheus.yml, the configuration we ship."""
    config = yaml.safe_load(SHIPPED_PROMETHEUS_CONFIG.read_text())["global"]
    return Intervals(config["scrape_interval"], config["evaluation_interval"])


QUICK_INTERVALS = Intervals("1s", "1s")


def find_tool(*names: str) -> str:
    for name in names:
        path = os.environ.get(name.upper().replace("-", "_")) or shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(
        f"{names[0]} is not installed: `apt-get install -y --no-install-recommends "
        f"prometheus prometheus-alertmanager` (Debian) provides it"
    )


class MlflowServer:
    """`mlflow server` with a SQLite backend and proxied artifacts, on a fixed port so that
    it can be stopped (the registry unreachable) and started again at the same address."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.workdir / 'registry.db'}",
            "--serve-artifacts",
            "--artifacts-destination", str(self.workdir / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip
        log_path = self.workdir / "mlflow-server.log"
        process = start_process(
            command, log_path, {}, cwd=self.workdir, inherit=lambda k: not k.startswith("MLFLOW_")
        )
        self.process = process
        wait_ready(
            f"{self.url}/health",
            MLFLOW_START_SECONDS,
            alive=lambda: process.poll() is None,
            detail=lambda: log_path.read_text(errors="replace")[-2000:],
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, 20)
            self.process = None


def register_versions(registry: MlflowServer, faults_dir: Path, canaries: bool) -> dict[str, str]:
    """Log the drills' versions (drills.models) into the registry, in a process of their own."""
    done = subprocess.run(
        [sys.executable, "-m", "drills.models", registry.url, str(faults_dir)]
        + (["--canaries"] if canaries else []),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"registering the drill versions failed:\n{done.stderr[-4000:]}")
    versions: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return versions


def registry_command(registry: MlflowServer, module: str, *args: str) -> dict[str, object]:
    """A registry script (`python -m registry_scripts.MODULE`), as the pipeline runs it."""
    done = subprocess.run(
        [sys.executable, "-m", f"registry_scripts.{module}", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": registry.url},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {args} failed:\n{done.stdout}{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class ServingPod:
    """The production command as a pod runs it: fixed ports, so a restart (a new pod behind
    the same Service) is scraped and called at the same address."""

    def __init__(self, workdir: Path, registry: MlflowServer, model_name: str) -> None:
        self.workdir = workdir
        self.registry = registry
        self.port, self.ops_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ops_url = f"http://127.0.0.1:{self.ops_port}"
        self.metrics_dir = workdir / "metrics"
        self.model_uri = f"models:/{model_name}/Production"
        self.server: RunningServer | None = None
        self.starts = 0

    def start(self) -> RunningServer:
        """Start the production command (not waiting for it to be ready)."""
        self.starts += 1
        log_path = self.workdir / f"server-{self.starts}.log"
        process = start_production_command(
            log_path,
            MLFLOW_TRACKING_URI=self.registry.url,
            MODEL_URI=self.model_uri,
            PORT=str(self.port),
            OPS_PORT=str(self.ops_port),
            WORKERS="2",
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
        )
        self.server = RunningServer(process, self.base_url, log_path, self.ops_url)
        return self.server

    def wait_ready(self) -> None:
        server = self.running()
        wait_ready(
            f"{self.ops_url}/readyz",
            SERVER_START_SECONDS,
            alive=server.alive,
            detail=server.log_tail,
        )

    def running(self) -> RunningServer:
        assert self.server is not None, "the pod was not started"
        return self.server

    def stop(self) -> None:
        """SIGTERM, as the kubelet stops a pod; the group is killed if it lingers."""
        if self.server is not None:
            stop_group(self.server.process, 40)
            self.server = None

    def restart(self) -> None:
        """A new pod: stop, start, ready (what a rollout does, one pod at a time)."""
        self.stop()
        self.start()
        self.wait_ready()


@contextmanager
def running_monitoring(
    workdir: Path, scrape_target: str, intervals: Intervals
) -> Iterator[AlertLog]:
    """Prometheus (our rules) scraping `scrape_target`, Alertmanager, and the receiver."""
    with running_receiver() as (receiver_url, alert_log):
        alertmanager_port, prometheus_port = free_port(), free_port()
        (workdir / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "drill",
                        "group_by": ["alertname", "job"],
                        "group_wait": ALERTMANAGER_GROUP_WAIT,
                        "group_interval": "5s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "drill",
                            "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
                        }
                    ],
                }
            )
        )
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": intervals.scrape,
                        "evaluation_interval": intervals.evaluation,
                    },
                    "rule_files": [str(RULES)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {"job_name": JOB, "static_configs": [{"targets": [scrape_target]}]}
                    ],
                }
            )
        )
        alertmanager = start_process(
            [
                find_tool("prometheus-alertmanager", "alertmanager"),
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            workdir / "alertmanager.log",
            {},
            cwd=workdir,
        )
        prometheus = start_process(
            [
                find_tool("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            workdir / "prometheus.log",
            {},
            cwd=workdir,
        )
        try:
            wait_ready(f"http://127.0.0.1:{alertmanager_port}/-/ready", 30)
            wait_ready(f"http://127.0.0.1:{prometheus_port}/-/ready", 30)
            yield alert_log
        finally:
            stop_group(prometheus, 20)
            stop_group(alertmanager, 20)
