"""checkov's Kubernetes and Dockerfile policies, offline, with k8s/.checkov.yaml's skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

from .manifests import Manifest
from .validators import checkov_findings

# Every test starts checkov.
pytestmark = pytest.mark.slow


def test_rendered_overlay_passes_checkov(rendered: list[Manifest], tmp_path: Path) -> None:
    assert checkov_findings(rendered, tmp_path, "kubernetes") == ""


def test_dockerfile_passes_checkov(tmp_path: Path) -> None:
    assert checkov_findings(PROJECT_ROOT / "Dockerfile", tmp_path, "dockerfile") == ""
