"""The drills kept from rotting: CI runs the killed-workers drill on the real stack (`mlflow
server`, the production command, Prometheus with ops/prometheus/alerts.yml, Alertmanager),
with 1 s scrape and evaluation intervals instead of the shipped ones. `make drill` runs
every failure at the shipped intervals (docs/drills.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT
from tests.support.ci import missing

pytestmark = pytest.mark.slow  # starts the whole stack


def test_killed_workers_are_reported_by_an_alert_and_replaced(tmp_path: Path) -> None:
    for tool in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed: `apt-get install -y {tool}` (Debian) provides it")
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "drills", "--quick", "--only", "workers-killed"),
            *("--output", str(report_path)),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (drill,) = json.loads(report_path.read_text())["drills"]
    assert drill["detected_by"] == "ModelServingWorkersDying", drill
    assert drill["mttd_seconds"] is not None, drill
    assert drill["mttd_seconds"] > 0, drill
    # Recovered: the clients were answered correctly again, by the replacement workers.
    assert drill["mttr_seconds"] is not None, drill
    assert drill["mttr_met"], drill
    assert drill["requests"] > 0, drill
    assert "worker processes SIGKILLed" in drill["notes"][0], drill
