"""Where a model version's rules file lives: in the registry, on the version itself.

The rules text is a model-version tag (the registry keeps up to 100,000 characters per
tag, SQL store and `mlflow server` alike), with its sha256 in a second tag; so the rules
belong to the version, and promoting or rolling back a version brings its rules. An
exported model directory carries them as a file next to registry_origin.json.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow

from model_fetch.origin import REGISTRY_ORIGIN_FILE, RegistryOrigin
from model_fetch.retries import apply_http_defaults

RULES_TAG = "guardrails.rules"
RULES_SHA256_TAG = "guardrails.sha256"
RULES_FILE = "guardrails.yaml"


class RulesIntegrityError(ValueError):
    """The rules text does not match the sha256 recorded with it."""


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_rules_text(origin: RegistryOrigin, model_dir: Path | None) -> str | None:
    """The rules of the version `origin` names: from an exported model directory's file,
    else from the registry's tags; None when it has none, or is no registry version."""
    if model_dir is not None and (model_dir / RULES_FILE).is_file():
        return (model_dir / RULES_FILE).read_text(encoding="utf-8")
    if origin.name is None or origin.version is None or model_dir_is_export(model_dir):
        return None
    apply_http_defaults()
    tags = mlflow.MlflowClient().get_model_version(origin.name, origin.version).tags
    text = tags.get(RULES_TAG)
    if text is None:
        return None
    recorded = tags.get(RULES_SHA256_TAG)
    if recorded != sha256_of(text):
        raise RulesIntegrityError(
            f"the rules of {origin.name} version {origin.version} do not match their "
            f"recorded sha256 (tag {RULES_SHA256_TAG}): attach them again"
        )
    return text


def model_dir_is_export(model_dir: Path | None) -> bool:
    """An exported directory is served without a registry: its rules are its file."""
    return model_dir is not None and (model_dir / REGISTRY_ORIGIN_FILE).is_file()
