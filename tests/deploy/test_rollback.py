"""Rollback, simulated: the server a pod template starts serves that template's version."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import stop_process
from tests.support.production import start_production_command
from tests.support.waiting import wait_ready

from .manifests import PinRelease, render_overlay
from .servers import check_serves, pod_environment

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
    log = tmp_path / "server.log"
    server = start_production_command(log, **env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(f"{base_url}/readyz", 90, alive=lambda: server.poll() is None)
        described = check_serves(base_url, version)
        assert described["requested_uri"] == f"models:/credit-risk-scoring/{version}"
    except AssertionError:
        print(log.read_text()[-4000:])  # pytest shows it with the failure
        raise
    finally:
        stop_process(server, 40, group=False)
