"""A real Prometheus (Debian's package) on 127.0.0.1, scraping the servers a test starts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port
from tests.support.processes import start_process, stop_process
from tests.support.waiting import wait_ready

JOB = "model-serving"


class Prometheus:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets_health(self) -> str:
        """Each target's last scrape as Prometheus saw it, for a failure's message."""
        targets = self.api("targets")["activeTargets"]
        return "; ".join(
            f"{t['scrapeUrl']}: {t['health']} in {t['lastScrapeDuration']:.3f} s"
            f"{' (' + t['lastError'] + ')' if t['lastError'] else ''}"
            for t in targets
        )


@contextmanager
def running_prometheus(
    binary: str, workdir: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (host:port) every second as job JOB; stopped after."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = workdir / "prometheus.log"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    process = start_process(command, log_path, {}, cwd=workdir)
    running = Prometheus(process, f"http://127.0.0.1:{port}", log_path)

    try:
        wait_ready(
            f"{running.url}/-/ready",
            30,
            alive=lambda: process.poll() is None,
            detail=lambda: log_path.read_text()[-2000:],
        )
        yield running
    finally:
        stop_process(process, 20)
