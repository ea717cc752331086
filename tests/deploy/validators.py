"""The offline validators the deployment tests run: kubernetes-validate --strict, checkov."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.support import PROJECT_ROOT
from tests.support.ci import missing

from .manifests import K8S, Manifest, venv_tool

# The three newest minor versions kubernetes-validate (requirements-deploy.txt) ships schemas
# for; the preStop `sleep` action the Deployment uses is GA since 1.34.
KUBERNETES_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")


def validate_strict(docs: list[Manifest], version: str, tmp_path: Path) -> list[str]:
    """Problems kubernetes-validate --strict finds; a kind without a schema is one too.

    The tool only warns and exits 0 for a kind it has no schema for, so its warnings count.
    """
    path = tmp_path / f"rendered-{version}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", "-k", version, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = (result.stdout + result.stderr).splitlines()
    problems = [line for line in lines if not line.startswith("INFO")]
    if result.returncode != 0 and not problems:
        problems.append(f"exit status {result.returncode}")
    return problems


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


def checkov_findings(target: Path | list[Manifest], tmp_path: Path, framework: str) -> str:
    """checkov's output when it fails `target` (a file, or manifests written to one), or
    finds nothing to check; empty when every check passed."""
    if isinstance(target, list):
        path = tmp_path / "rendered.yaml"
        path.write_text(yaml.safe_dump_all(target))
        target = path
    result = run_checkov(target, framework)
    if result.returncode == 0 and "Passed checks:" in result.stdout:
        return ""
    return result.stdout + result.stderr
