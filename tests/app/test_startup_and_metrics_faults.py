"""Start-up that must fail, and metrics that must stay true, through the real production
command (Gunicorn on 127.0.0.1): an empty API key file, a registry that is down with
credentials in its URI, a worker killed after it reported drift, two instances side by side.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_fetch.retries import HTTP_DEFAULTS
from tests.support.demo import RISKY_ROW, VALID_ROW
from tests.support.ports import free_port
from tests.support.production import RunningServer, StartServer, stop, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
SECRET = "s3cr3t-Pa55word"  # noqa: S105 (made up: the log must never show it)
# MLflow's own retry defaults take minutes against a registry that is down.
START_FAILS_WITHIN_SECONDS = 45


def critical_lines(server: RunningServer) -> list[str]:
    return [str(line["message"]) for line in server.log_lines() if line.get("level") == "CRITICAL"]


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"], ids=["empty", "blank"])
def test_a_key_file_with_no_key_stops_the_server_with_exit_3(
    start: StartServer, tmp_path: Path, content: str
) -> None:
    """Fail closed: a Secret mounted empty by mistake must not open the service."""
    keys = tmp_path / "api-keys"
    keys.write_text(content)
    server = start(API_KEYS_FILE=str(keys))
    assert server.process.wait(timeout=60) == 3
    (critical,) = critical_lines(server)
    assert critical.startswith("authentication misconfigured, server not started")
    assert f"API_KEYS_FILE {keys} holds no key" in critical


def test_a_registry_that_is_down_fails_the_start_fast_without_showing_credentials(
    start: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded retries at start-up, one CRITICAL line, and the password nowhere in the log."""
    for key in HTTP_DEFAULTS:  # the server's own bounded defaults are under test
        monkeypatch.delenv(key, raising=False)
    address = f"127.0.0.1:{free_port()}"
    (tmp_path / "tmp").mkdir()
    server = start(
        MLFLOW_TRACKING_URI=f"http://ci-user:{SECRET}@{address}",
        MLFLOW_TRACKING_PASSWORD=SECRET,
        PROMETHEUS_MULTIPROC_DIR="",  # not given: the instance makes (and removes) its own
        TMPDIR=str(tmp_path / "tmp"),
    )
    assert server.process.wait(timeout=START_FAILS_WITHIN_SECONDS) == 3
    (critical,) = critical_lines(server)
    assert "model did not load, server not started" in critical
    assert f"registry at http://***@{address}" in critical
    log = server.log_path.read_text()
    assert SECRET not in log
    assert "ci-user:" not in log
    assert not list((tmp_path / "tmp").glob("serving-metrics-*")), "left behind"


def _samples(base_url: str, name: str) -> dict[str, float]:
    """Samples of one metric family, keyed by their `feature` or `status` label."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        sample.labels.get("feature") or sample.labels.get("status", ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
        and (name != "http_requests_total" or sample.labels.get("route") == "/invocations")
    }


def _wait_for_drift(base_url: str, seconds: float = 15) -> dict[str, float]:
    wait_until(lambda: bool(_samples(base_url, "model_feature_drift_psi")), seconds, "drift")
    return _samples(base_url, "model_feature_drift_psi")


def test_instances_keep_their_own_metrics_and_a_dead_workers_drift_goes_with_it(
    start: StartServer, tmp_path: Path
) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR each instance makes its own directory (the second
    start does not wipe the first's samples); drift gauges keep live workers' values only;
    and Gunicorn's control socket is off (nothing under HOME or XDG_RUNTIME_DIR)."""
    home, runtime = tmp_path / "home", tmp_path / "xdg"
    drift_settings = {
        "WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": "",  # not given
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "DRIFT_WINDOW_ROWS": "100",
        "DRIFT_MIN_ROWS": "10",
        "DRIFT_SAMPLE_INTERVAL_MS": "0",
    }
    instances = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        (workdir / "tmp").mkdir(parents=True)
        home.mkdir(exist_ok=True)
        runtime.mkdir(exist_ok=True)
        server = start(
            workdir=workdir,
            TMPDIR=str(workdir / "tmp"),
            # mypy cannot tell that no key of drift_settings is `workers` or `predict_seconds`.
            **drift_settings,  # type: ignore[arg-type]
        )
        wait_ready(server)
        instances.append(server)
        if name == "first":
            body = {"dataframe_records": [RISKY_ROW] * 100}
            response = httpx.post(f"{server.base_url}/invocations", json=body, timeout=30)
            assert response.status_code == 200
            drift = _wait_for_drift(server.base_url)
            assert max(drift.values()) > 0.2
    first, second = instances
    for _ in range(3):
        body = {"dataframe_records": [VALID_ROW]}
        assert httpx.post(f"{second.base_url}/invocations", json=body, timeout=30).is_success
    # The failing-model series is there from the start, at 0 (app.observability.metrics).
    assert _samples(first.base_url, "http_requests_total") == {"200": 1.0, "500": 0.0}
    assert _samples(second.base_url, "http_requests_total") == {"200": 3.0, "500": 0.0}
    assert _samples(first.base_url, "model_feature_drift_psi") == drift
    assert not [path for path in (*home.rglob("*"), *runtime.rglob("*"))], "a control socket"

    (victim,) = first.worker_pids()
    os.kill(victim, signal.SIGKILL)
    first.wait_for_workers(1, exclude={victim}, seconds=30)
    wait_ready(first)
    assert _samples(first.base_url, "model_feature_drift_psi") == {}
    # counts are kept
    assert _samples(first.base_url, "http_requests_total") == {"200": 1.0, "500": 0.0}

    assert stop(first) == 0
    assert not list((tmp_path / "first" / "tmp").glob("serving-metrics-*")), "left behind"
