"""k8s/wait-rollout.sh, the deploy and rollback jobs' wait under the canary option, against a
stand-in kubectl whose Rollout moves along a scripted timeline (no cluster here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.stand_ins import install_stand_in

from .manifests import K8S

# Every test starts k8s/wait-rollout.sh.
pytestmark = pytest.mark.slow

OLD = ["registry.example.com/ml/credit-risk-serving:aaaaaaa-model-1", "1"]
NEW = ["registry.example.com/ml/credit-risk-serving:bbbbbbb-model-2", "2"]
REPLICASETS = {"oldhash": OLD, "newhash": NEW}


def wait(
    tmp_path: Path, timeline: list[dict[str, Any]], *, timeout: int = 30
) -> subprocess.CompletedProcess[str]:
    state = {"deployment": NEW, "replicasets": REPLICASETS, "timeline": timeline, "position": 0}
    (tmp_path / "state.json").write_text(json.dumps(state))
    install_stand_in(tmp_path, "kubectl", "tests.deploy.fake_argo_kubectl")
    return subprocess.run(
        ["sh", str(K8S / "wait-rollout.sh"), "credit-risk", "credit-risk-serving", str(timeout)],
        env={
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "FAKE_ARGO_STATE": str(tmp_path / "state.json"),
            "WAIT_INTERVAL_SECONDS": "0",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def status(phase: str, current: str, stable: str, message: str = "") -> dict[str, str]:
    return {"phase": phase, "current": current, "stable": stable, "message": message}


def test_a_promoted_canary_ends_the_wait_with_success(tmp_path: Path) -> None:
    done = wait(
        tmp_path,
        [
            # Polled before the controller saw the new template: the old one is Healthy.
            status("Healthy", "oldhash", "oldhash"),
            status("Progressing", "newhash", "oldhash"),
            status("Paused", "newhash", "oldhash", "CanaryPauseStep"),
            status("Progressing", "newhash", "oldhash"),
            status("Healthy", "newhash", "newhash"),
        ],
    )
    assert done.returncode == 0, done.stderr
    assert "promoted registry.example.com/ml/credit-risk-serving:bbbbbbb-model-2 2" in done.stdout
    assert "has not started" in done.stdout


def test_an_aborted_canary_fails_the_wait_with_argos_message(tmp_path: Path) -> None:
    done = wait(
        tmp_path,
        [
            # The previous release was aborted: that Degraded is not this release's verdict.
            status("Degraded", "oldhash", "oldhash", "an older abort"),
            status("Progressing", "newhash", "oldhash"),
            status(
                "Degraded",
                "newhash",
                "oldhash",
                "RolloutAborted: metric canary-prediction-shift failed",
            ),
        ],
    )
    assert done.returncode == 1
    assert "aborted: RolloutAborted: metric canary-prediction-shift failed" in done.stderr
    assert "an older abort" not in done.stderr


def test_an_unchanged_template_is_promoted_already(tmp_path: Path) -> None:
    done = wait(tmp_path, [status("Healthy", "newhash", "newhash")])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("stuck", ["Progressing", "Paused"])
def test_a_rollout_that_never_finishes_fails_at_the_timeout(tmp_path: Path, stuck: str) -> None:
    done = wait(tmp_path, [status(stuck, "newhash", "oldhash")], timeout=1)
    assert done.returncode == 1
    assert "not finished within 1 s" in done.stderr


def test_wrong_usage_is_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", str(K8S / "wait-rollout.sh"), "only-one"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "usage" in done.stderr
