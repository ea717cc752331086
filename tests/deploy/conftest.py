"""Fixtures of the deployment tests: rendered overlays and a private copy of k8s/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import run_module

from .manifests import K8S, OVERLAYS, Manifest, PinRelease, render_overlay


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(overlay: str) -> list[Manifest]:
    return render_overlay(overlay)


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A private copy of k8s/, so tests pin releases without touching the repository."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


@pytest.fixture
def pin_release(k8s_copy: Path) -> PinRelease:
    """Run the private copy's pin-release.sh with the given arguments."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(k8s_copy / "pin-release.sh"), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )

    return run


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite registry directory with versions 1 and 2 of credit-risk-scoring."""
    root = tmp_path_factory.mktemp("deploy-registry")
    run_module("tests.deploy.registry", str(root))
    # The image test mounts it into a container whose user is not ours, and MLflow writes
    # beside a registered model's files when it loads one from a local artifact store.
    for path in (root, *root.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    return root
