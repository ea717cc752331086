"""The deploy job's lines that pick the overlay by DEPLOY_STRATEGY, run with the real kubectl.

The whole deploy and rollback jobs run (rolling) in tests/registry_scripts/test_gitlab_ci.py;
here the strategy switch is run as written for each strategy, on a copy of k8s/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import PROJECT_ROOT

from .manifests import venv_tool


def _deploy_lines() -> list[str]:
    ci = yaml.safe_load((PROJECT_ROOT / ".gitlab-ci.yml").read_text())
    return [str(line) for line in ci["deploy"]["script"]]


def _render(tmp_path: Path, strategy: str) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "k8s", workdir / "k8s")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(venv_tool("kubectl"))
    lines = [
        line
        for line in _deploy_lines()
        if "kubectl kustomize" in line or line.startswith('case "$DEPLOY_STRATEGY"')
    ]
    assert len(lines) == 3, lines
    ci = yaml.safe_load((PROJECT_ROOT / ".gitlab-ci.yml").read_text())
    return subprocess.run(
        ["bash", "-c", "\n".join(["set -eo pipefail", *lines])],
        cwd=workdir,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "K8S_OVERLAY": ci["variables"]["K8S_OVERLAY"]["value"],
            "DEPLOY_STRATEGY": strategy,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow  # starts the job's lines in bash, and kubectl
@pytest.mark.parametrize(("strategy", "has_rollout"), [("rolling", False), ("canary", True)])
def test_the_strategy_picks_the_overlay(tmp_path: Path, strategy: str, has_rollout: bool) -> None:
    done = _render(tmp_path, strategy)
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all((tmp_path / "checkout" / "manifests.yaml").read_text()))
    kinds = [doc["kind"] for doc in docs if doc]
    assert ("Rollout" in kinds) is has_rollout
    assert ("AnalysisTemplate" in kinds) is has_rollout
    assert "Deployment" in kinds


@pytest.mark.slow  # starts the job's lines in bash
def test_an_unknown_strategy_stops_the_job(tmp_path: Path) -> None:
    done = _render(tmp_path, "blue-green")
    assert done.returncode == 2
    assert "DEPLOY_STRATEGY must be rolling or canary" in done.stderr


def test_the_default_strategy_is_rolling_and_deploy_and_rollbacks_wait_for_a_canary() -> None:
    ci = yaml.safe_load((PROJECT_ROOT / ".gitlab-ci.yml").read_text())
    assert ci["variables"]["DEPLOY_STRATEGY"]["value"] == "rolling"
    waits = [line for line in ci["deploy"]["script"] if "k8s/wait-rollout.sh" in line]
    assert len(waits) == 1
    assert waits[0].startswith('if [ "$DEPLOY_STRATEGY" = canary ]; then sh k8s/wait-rollout.sh')
    # Both rollback jobs run k8s/rollback.sh, which waits for the Rollout under canary.
    for job in ("rollback-model", "rollback-release"):
        assert any(line.startswith("sh k8s/rollback.sh") for line in ci[job]["script"]), job
    rollback = (PROJECT_ROOT / "k8s" / "rollback.sh").read_text()
    assert 'if [ "${DEPLOY_STRATEGY:-rolling}" = canary ]; then' in rollback
    assert 'sh "$here/wait-rollout.sh" "$namespace" "$name"' in rollback
