"""Resolve a model URI to a concrete registry version and download exactly that version.

An exported model directory carries registry_origin.json, so a server started from it
still knows the registry name and version it came from without a registry.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.store.artifact.utils.models import get_model_name_and_version

from model_fetch.retries import apply_http_defaults

REGISTRY_ORIGIN_FILE = "registry_origin.json"


@dataclass(frozen=True)
class RegistryOrigin:
    """The registry identity of a model: looked up, or read from an exported model dir."""

    resolved_uri: str
    name: str | None = None
    version: str | None = None


def resolve_origin(uri: str) -> RegistryOrigin:
    """Turn a stage, alias or `latest` URI into `models:/NAME/VERSION`; read exported dirs.

    Registry failures propagate as MLflow raised them; callers decide what they mean.
    """
    local = Path(uri)
    if local.is_dir():
        origin_file = local / REGISTRY_ORIGIN_FILE
        if origin_file.is_file():
            recorded = json.loads(origin_file.read_text())
            return RegistryOrigin(
                resolved_uri=str(recorded.get("resolved_uri") or uri),
                name=recorded.get("name"),
                version=None if recorded.get("version") is None else str(recorded["version"]),
            )
        return RegistryOrigin(resolved_uri=str(local.resolve()))
    if not uri.startswith("models:/"):
        return RegistryOrigin(resolved_uri=uri)
    apply_http_defaults()
    with warnings.catch_warnings():
        # Stages are deprecated in MLflow 3 but models:/NAME/Production is part of our contract.
        warnings.simplefilter("ignore", FutureWarning)
        resolved = get_model_name_and_version(mlflow.MlflowClient(), uri)
    if len(resolved) == 1:  # models:/m-<id>, a logged model outside the registry
        return RegistryOrigin(resolved_uri=uri)
    name, version = resolved
    return RegistryOrigin(resolved_uri=f"models:/{name}/{version}", name=name, version=str(version))


def download_model(uri: str, origin: RegistryOrigin, destination: Path | None = None) -> Path:
    """The resolved version's files on local disk (a local model directory as it is)."""
    if destination is None and Path(uri).is_dir():
        return Path(uri)
    apply_http_defaults()
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=origin.resolved_uri,
            dst_path=None if destination is None else str(destination),
        )
    )
