"""The rendered overlays validate, strictly, against the schemas of current Kubernetes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .manifests import Manifest
from .validators import KUBERNETES_VERSIONS, validate_strict

# Every test starts kubernetes-validate.
pytestmark = pytest.mark.slow


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
