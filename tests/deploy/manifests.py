"""Rendering the kustomize overlays with the pinned tools, shared by the deployment tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import PROJECT_ROOT

K8S = PROJECT_ROOT / "k8s"
CANARY_COMPONENT = "components/canary"


def _overlays(canary: bool) -> tuple[str, ...]:
    """Every overlay under k8s/overlays, so a new one is checked without a second edit:
    plain ones by the Kubernetes schemas and policy, canary ones (Argo Rollouts CRDs) by
    the Argo schemas too."""
    found = []
    for kustomization in sorted((K8S / "overlays").glob("*/kustomization.yaml")):
        if (CANARY_COMPONENT in kustomization.read_text()) == canary:
            found.append(kustomization.parent.name)
    return tuple(found)


OVERLAYS = _overlays(canary=False)
CANARY_OVERLAYS = _overlays(canary=True)

Manifest = dict[str, Any]
PinRelease = Callable[..., subprocess.CompletedProcess[str]]


def venv_tool(name: str) -> str:
    """Path of a tool pinned in requirements-deploy.txt, from this interpreter's venv."""
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is missing: pip install -r requirements-deploy.txt")
    return path


def render_overlay(overlay: str, k8s_dir: Path = K8S) -> list[Manifest]:
    """`kubectl kustomize` one overlay, offline, into its list of resources."""
    out = subprocess.run(
        [venv_tool("kubectl"), "kustomize", str(k8s_dir / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(docs: list[Manifest], kind: str) -> Manifest:
    """The single resource of `kind` in a render."""
    (match,) = (doc for doc in docs if doc["kind"] == kind)
    return match


def pod_template(docs: list[Manifest]) -> Manifest:
    template: Manifest = find(docs, "Deployment")["spec"]["template"]
    return template


def server_container(docs: list[Manifest]) -> Manifest:
    container: Manifest
    (container,) = pod_template(docs)["spec"]["containers"]
    return container
