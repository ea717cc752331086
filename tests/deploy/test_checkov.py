"""checkov's Kubernetes and Dockerfile policies, offline, with k8s/.checkov.yaml's skips."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.support import PROJECT_ROOT
from tests.support.ci import missing

from .manifests import K8S, Manifest

# checkov cannot share the test venv (tests/deploy/requirements-checkov.txt says why).
CHECKOV = Path(os.environ.get("CHECKOV", PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))


def run_checkov(target: Path, framework: str) -> subprocess.CompletedProcess[str]:
    if not CHECKOV.is_file():
        message = (
            f"checkov not found at {CHECKOV}: python3 -m venv .venv-checkov && "
            ".venv-checkov/bin/pip install -r tests/deploy/requirements-checkov.txt"
        )
        missing(message)
    return subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(K8S / ".checkov.yaml"),
            "--framework",
            framework,
            "--file",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        # Without these checkov tries the network for its version check and policies.
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "1", "BC_SKIP_MAPPING": "TRUE"},
    )


def test_rendered_overlay_passes_checkov(rendered: list[Manifest], tmp_path: Path) -> None:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(rendered))
    result = run_checkov(path, "kubernetes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed checks:" in result.stdout


def test_dockerfile_passes_checkov() -> None:
    result = run_checkov(PROJECT_ROOT / "Dockerfile", "dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed checks:" in result.stdout
