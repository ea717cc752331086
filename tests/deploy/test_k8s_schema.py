"""The rendered overlays validate, strictly, against the schemas of current Kubernetes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from .manifests import Manifest, venv_tool

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


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_overlay_is_valid_in_strict_mode(
    rendered: list[Manifest], version: str, tmp_path: Path
) -> None:
    assert validate_strict(rendered, version, tmp_path) == []


def test_misspelt_field_is_caught(rendered: list[Manifest], tmp_path: Path) -> None:
    """Strict mode is on: an unknown field in the pod template fails validation."""
    docs = yaml.safe_load(yaml.safe_dump(rendered))
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 50
    assert validate_strict(docs, KUBERNETES_VERSIONS[-1], tmp_path) != []


def test_kind_without_schema_is_a_failure(tmp_path: Path) -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "x"}}
    assert validate_strict([unknown], KUBERNETES_VERSIONS[-1], tmp_path) != []
