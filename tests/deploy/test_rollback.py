"""Rollback, simulated: the server a pod template starts serves that template's version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .manifests import ROOT, PinRelease, render_overlay
from .servers import check_serves, free_port, pod_environment, wait_ready

IMAGE = "registry.example.com/ml/credit-risk-serving:a1b2c3d-model-{version}"


@pytest.mark.slow
@pytest.mark.parametrize("version", ["1", "2"])
def test_server_started_from_a_pod_template_serves_its_version(
    pin_release: PinRelease, k8s_copy: Path, demo_registry: Path, tmp_path: Path, version: str
) -> None:
    """What `kubectl rollout undo` restores (the old pod template) is enough to serve the old
    model: nothing else, such as a registry alias or a ConfigMap, decides the version."""
    assert pin_release("production", version, IMAGE.format(version=version)).returncode == 0
    env = pod_environment(render_overlay("production", k8s_copy))
    assert env["MODEL_URI"] == f"models:/credit-risk-scoring/{version}"
    port = free_port()
    env |= {
        # Only what differs between a cluster and this machine: where to listen, where the
        # registry is, and a private metrics directory.
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MLFLOW_TRACKING_URI": f"sqlite:///{demo_registry / 'mlflow.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(gunicorn), "--config", "python:app.gunicorn_conf", "app.main:create_app()"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, seconds=90, alive=lambda: server.poll() is None)
        described = check_serves(base_url, version)
        assert described["requested_uri"] == f"models:/credit-risk-scoring/{version}"
    except AssertionError:
        print(log.read_text()[-4000:])  # pytest shows it with the failure
        raise
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
