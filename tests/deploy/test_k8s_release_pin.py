"""k8s/pin-release.sh, and the rollback it makes possible, on a private copy of k8s/."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from .manifests import Manifest, PinRelease, render_overlay, server_container

CHANGE_CAUSE = "kubernetes.io/change-cause"
IMAGE = "registry.example.com/ml/credit-risk-serving:{sha}-model-{version}"


def leaves(node: Any, path: str = "") -> dict[str, Any]:
    """Flatten nested manifests to {path: value}; list items are keyed by their name."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = (
            (item.get("name", i) if isinstance(item, dict) else i, item)
            for i, item in enumerate(node)
        )
    else:
        return {path: node}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(leaves(value, f"{path}/{key}"))
    return flat


def changed(before: Any, after: Any) -> set[str]:
    old, new = leaves(before), leaves(after)
    return {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


def pinned_render(pin_release: PinRelease, k8s_copy: Path, *args: str) -> list[Manifest]:
    result = pin_release(*args)
    assert result.returncode == 0, result.stderr
    return render_overlay(args[0], k8s_copy)


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_two_versions_differ_in_the_model_version_and_image_only(
    pin_release: PinRelease, k8s_copy: Path, overlay: str
) -> None:
    image_v1 = IMAGE.format(sha="a1b2c3d", version=1)
    image_v2 = IMAGE.format(sha="e4f5a6b", version=2)
    v1 = pinned_render(pin_release, k8s_copy, overlay, "1", image_v1)
    v2 = pinned_render(pin_release, k8s_copy, overlay, "2", image_v2)
    env = {item["name"]: item.get("value") for item in server_container(v2)["env"]}
    assert env["MODEL_URI"] == "models:/credit-risk-scoring/2"
    templates: set[str] = set()
    for old, new in zip(v1, v2, strict=True):
        if old["kind"] == "Deployment":
            templates = changed(old["spec"].pop("template"), new["spec"].pop("template"))
            causes = [doc["metadata"]["annotations"].pop(CHANGE_CAUSE) for doc in (old, new)]
            assert causes == [
                f"model credit-risk-scoring version {version}, image {image}"
                for version, image in ((1, image_v1), (2, image_v2))
            ]
        assert old == new, old["kind"]
    assert templates == {
        "/metadata/labels/model-version",
        "/metadata/annotations/model-uri",
        "/spec/containers/server/image",
        "/spec/containers/server/env/MODEL_URI/value",
    }


def test_baked_image_serves_the_model_it_carries(pin_release: PinRelease, k8s_copy: Path) -> None:
    """With --baked the pod never contacts the registry, but still names its version."""
    docs = pinned_render(
        pin_release, k8s_copy, "production", "7", IMAGE.format(sha="a1b2c3d", version=7), "--baked"
    )
    container = server_container(docs)
    template = next(doc for doc in docs if doc["kind"] == "Deployment")["spec"]["template"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MODEL_URI"] == "/opt/model"
    assert template["metadata"]["labels"]["model-version"] == "7"
    assert template["metadata"]["annotations"]["model-uri"] == "models:/credit-risk-scoring/7"


@pytest.mark.parametrize(
    "args",
    [
        ("production", "Production", IMAGE.format(sha="a1b2c3d", version=1)),
        ("production", "@champion", IMAGE.format(sha="a1b2c3d", version=1)),
        ("production", "0", IMAGE.format(sha="a1b2c3d", version=0)),
        ("production", "", IMAGE.format(sha="a1b2c3d", version=1)),
        ("production", "3", "registry.example.com:5000/ml/credit-risk-serving"),
        ("production", "3", "credit-risk-serving:1\nkind: Secret"),
        ("production", "3", IMAGE.format(sha="a1b2c3d", version=3), "--bake"),
        ("qa", "3", IMAGE.format(sha="a1b2c3d", version=3)),
        ("production", "3"),
    ],
    ids=[
        "stage",
        "alias",
        "zero",
        "empty",
        "untagged-image",
        "yaml-injection",
        "unknown-option",
        "unknown-overlay",
        "missing-image",
    ],
)
def test_bad_pins_are_refused_and_change_nothing(
    pin_release: PinRelease, k8s_copy: Path, args: tuple[str, ...]
) -> None:
    release = k8s_copy / "overlays" / "production" / "release.yaml"
    before = release.read_text()
    result = pin_release(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("pin-release: ")
    assert release.read_text() == before
