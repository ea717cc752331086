"""The canary overlay renders a Rollout and an AnalysisTemplate that Argo Rollouts' own CRD
schemas accept in strict mode, and its Kubernetes kinds stay valid for Kubernetes."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
from referencing.jsonschema import DRAFT202012

from .argo_rollouts_schemas import KINDS, OBJECT_META_REF, schema_path
from .manifests import CANARY_OVERLAYS, Manifest, find, pod_template, render_overlay
from .validators import KUBERNETES_VERSIONS, checkov_findings, validate_strict

# Every test starts `kubectl kustomize` or a validator.
pytestmark = pytest.mark.slow

_STRICT_K8S = (
    Path(kubernetes_validate.__file__).parent
    / "kubernetes-json-schema"
    / f"v{KUBERNETES_VERSIONS[-1]}-local-strict"
)
_BASE = "https://kubernetes-validate.invalid/api/"
_ARG = re.compile(r"\{\{args\.([\w-]+)\}\}")


@pytest.fixture(scope="module", params=CANARY_OVERLAYS)
def canary(request: pytest.FixtureRequest) -> list[Manifest]:
    return render_overlay(request.param)


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    """Argo's schema for `kind`, its metadata checked by Kubernetes' strict ObjectMeta."""
    schema = json.loads(schema_path(kind).read_text())
    object_meta = json.loads((_STRICT_K8S / "objectmeta-meta-v1.json").read_text())

    def inline_object_meta(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("$ref") == OBJECT_META_REF:
                return object_meta
            return {key: inline_object_meta(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline_object_meta(item) for item in node]
        return node

    schema = inline_object_meta(schema) | {"$id": f"{_BASE}{kind.lower()}.json"}
    definitions = json.loads((_STRICT_K8S / "_definitions.json").read_text())
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        f"{_BASE}_definitions.json",
        referencing.Resource.from_contents(definitions, default_specification=DRAFT202012),
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def argo_problems(doc: Manifest) -> list[str]:
    errors = _validator(doc["kind"]).iter_errors(doc)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_canary_overlay_holds_one_rollout_and_one_analysis_template(
    canary: list[Manifest],
) -> None:
    kinds = [doc["kind"] for doc in canary]
    assert kinds.count("Rollout") == kinds.count("AnalysisTemplate") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_argo_object_is_valid_against_argo_rollouts_crd_schema_strictly(
    canary: list[Manifest], kind: str
) -> None:
    assert argo_problems(find(canary, kind)) == []


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("Rollout", ("spec", "strategy", "canary"), "stepz"),
        ("Rollout", ("spec", "workloadRef"), "nmae"),
        ("Rollout", ("metadata",), "lables"),
        ("AnalysisTemplate", ("spec", "metrics", 0), "successCondtion"),
        ("AnalysisTemplate", ("spec", "metrics", 0, "provider", "prometheus"), "querry"),
    ],
)
def test_misspelt_field_fails_as_strict_field_validation_would(
    canary: list[Manifest], kind: str, path: tuple[str | int, ...], field: str
) -> None:
    doc = copy.deepcopy(find(canary, kind))
    node: Any = doc
    for key in path:
        node = node[key]
    node[field] = []
    problems = argo_problems(doc)
    assert problems, f"{kind}: {'.'.join(map(str, path))}.{field} was accepted"
    assert any(field in problem for problem in problems)


def test_wrong_type_fails(canary: list[Manifest]) -> None:
    doc = copy.deepcopy(find(canary, "Rollout"))
    doc["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "ten"
    assert argo_problems(doc) != []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_kinds_of_the_canary_overlay_are_valid_in_strict_mode(
    canary: list[Manifest], version: str, tmp_path: Path
) -> None:
    kubernetes_kinds = [doc for doc in canary if doc["kind"] not in KINDS]
    assert validate_strict(kubernetes_kinds, version, tmp_path) == []


def test_rollout_reads_the_pinned_deployment_and_takes_over_its_pods(
    canary: list[Manifest],
) -> None:
    rollout = find(canary, "Rollout")
    deployment = find(canary, "Deployment")
    assert rollout["spec"]["workloadRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert "template" not in rollout["spec"]
    assert deployment["spec"]["replicas"] == 0
    assert rollout["spec"]["selector"] == deployment["spec"]["selector"]
    target = find(canary, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "credit-risk-serving",
    }
    # The plain overlay is untouched: its Deployment has no replicas and the HPA scales it.
    production = render_overlay("production")
    assert "replicas" not in find(production, "Deployment")["spec"]
    assert (
        find(production, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"]
        == "Deployment"
    )
    assert pod_template(production) == pod_template(canary)


def _analyses(rollout: Manifest) -> list[dict[str, Any]]:
    canary = rollout["spec"]["strategy"]["canary"]
    steps = [step["analysis"] for step in canary["steps"] if "analysis" in step]
    return [canary["analysis"], *steps]


def test_steps_are_10_analysis_50_analysis_with_background_analysis(
    canary: list[Manifest],
) -> None:
    strategy = find(canary, "Rollout")["spec"]["strategy"]["canary"]
    shape = [next(iter(step)) for step in strategy["steps"]]
    assert shape == ["setWeight", "analysis", "setWeight", "analysis"]
    assert [s["setWeight"] for s in strategy["steps"] if "setWeight" in s] == [10, 50]
    assert strategy["analysis"]["startingStep"] == 1
    template = find(canary, "AnalysisTemplate")["metadata"]["name"]
    for analysis in _analyses(find(canary, "Rollout")):
        assert analysis["templates"] == [{"templateName": template}]


def test_every_analysis_passes_the_pinned_model_version_as_the_canary_version(
    canary: list[Manifest],
) -> None:
    pinned = pod_template(canary)["metadata"]["labels"]["model-version"]
    for analysis in _analyses(find(canary, "Rollout")):
        args = {arg["name"]: arg["value"] for arg in analysis["args"]}
        assert args["canary-version"] == pinned
    background, *steps = _analyses(find(canary, "Rollout"))
    assert {a["value"] for a in background["args"] if a["name"] == "measurements"} == {"0"}
    for step in steps:
        assert {a["value"] for a in step["args"] if a["name"] == "measurements"} == {"3"}


def test_template_arguments_are_declared_used_and_given(canary: list[Manifest]) -> None:
    """Every {{args.x}} is declared; every declared one is used; those without a default
    are passed by every analysis of the Rollout, which passes no undeclared one."""
    template = find(canary, "AnalysisTemplate")
    declared = {arg["name"]: arg.get("value") for arg in template["spec"]["args"]}
    used = set(_ARG.findall(json.dumps(template["spec"]["metrics"])))
    assert used - declared.keys() == set()
    assert declared.keys() - used == set()
    required = {name for name, value in declared.items() if value is None}
    for analysis in _analyses(find(canary, "Rollout")):
        given = {arg["name"] for arg in analysis["args"]}
        assert required <= given
        assert given <= declared.keys()


def test_canary_overlay_passes_checkov(canary: list[Manifest], tmp_path: Path) -> None:
    assert checkov_findings(canary, tmp_path, "kubernetes") == ""
