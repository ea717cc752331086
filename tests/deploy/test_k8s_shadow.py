"""The shadow overlays: the pods of the overlay they build on, plus a pinned candidate.

Clients get what the pods serve; a shadow overlay must change nothing about that (image,
served model, every other setting), only add the candidate and its settings.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .manifests import K8S, Manifest, pod_template, render_overlay, server_container

pytestmark = pytest.mark.slow  # runs `kubectl kustomize` and k8s/pin-shadow.sh

SHADOW_SETTINGS = {"SHADOW_MODEL_URI", "SHADOW_SAMPLE_RATE", "SHADOW_QUEUE_SIZE"}
SHADOW_OVERLAYS = sorted(
    p.parent.name for p in (K8S / "overlays").glob("*-shadow/kustomization.yaml")
)


def env_of(docs: list[Manifest]) -> dict[str, object]:
    return {item["name"]: item.get("value") for item in server_container(docs)["env"]}


def pin_shadow(k8s_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(k8s_dir / "pin-shadow.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_every_environment_has_a_shadow_overlay() -> None:
    assert SHADOW_OVERLAYS == ["production-shadow", "staging-shadow"]


@pytest.mark.parametrize("shadow_overlay", SHADOW_OVERLAYS)
def test_a_shadow_overlay_serves_what_its_base_serves(shadow_overlay: str) -> None:
    base = render_overlay(shadow_overlay.removesuffix("-shadow"))
    shadowed = render_overlay(shadow_overlay)
    base_env, shadow_env = env_of(base), env_of(shadowed)
    assert set(shadow_env) - set(base_env) == SHADOW_SETTINGS
    assert {k: v for k, v in shadow_env.items() if k not in SHADOW_SETTINGS} == base_env
    assert server_container(shadowed)["image"] == server_container(base)["image"]
    assert server_container(shadowed)["resources"] == server_container(base)["resources"]
    assert pod_template(shadowed)["metadata"]["labels"] == pod_template(base)["metadata"]["labels"]
    # Every other resource (Service, HPA, PDB, NetworkPolicy, ConfigMap...) is the base's.
    assert [d for d in shadowed if d["kind"] != "Deployment"] == [
        d for d in base if d["kind"] != "Deployment"
    ]


def test_pin_shadow_writes_a_concrete_version_and_refuses_anything_else(k8s_copy: Path) -> None:
    pinned = pin_shadow(k8s_copy, "production", "7")
    assert pinned.returncode == 0, pinned.stderr
    env = env_of(render_overlay("production-shadow", k8s_copy))
    assert env["SHADOW_MODEL_URI"] == "models:/credit-risk-scoring/7"
    assert env["MODEL_URI"] == env_of(render_overlay("production", k8s_copy))["MODEL_URI"]
    for args in (("production", "latest"), ("production", "07"), ("nowhere", "7"), ("production",)):
        refused = pin_shadow(k8s_copy, *args)
        assert refused.returncode == 2, args
        assert "pin-shadow:" in refused.stderr
