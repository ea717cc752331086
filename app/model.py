"""Load one model from an MLflow URI, describe it, and predict with it.

The URI is resolved to a concrete registry version first and that version is loaded, so
what /version reports is exactly what serves, even if the stage or alias moves meanwhile.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import Model
from mlflow.pyfunc import PyFuncModel
from mlflow.store.artifact.utils.models import get_model_name_and_version
from mlflow.types import ParamSchema, Schema

from app.direct_predict import build_direct_predict
from app.errors import ModelLoadError

logger = logging.getLogger(__name__)

REGISTRY_ORIGIN_FILE = "registry_origin.json"
REPORTED_PACKAGES = ("mlflow", "scikit-learn", "xgboost-cpu", "pandas", "numpy", "fastapi")


@dataclass(frozen=True)
class ModelDescription:
    """What is serving: registry identity, where it came from, its signature."""

    requested_uri: str
    resolved_uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    signature: dict[str, Any] | None = None
    training_profile: dict[str, Any] | None = field(default=None, repr=False)
    load_seconds: float = 0.0
    packages: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """What /version shows: everything but the (large) training profile."""
        described = asdict(self)
        described["has_training_profile"] = described.pop("training_profile") is not None
        return described


@dataclass(frozen=True)
class RegistryOrigin:
    """The registry identity of a model: looked up, or read from an exported model dir."""

    resolved_uri: str
    name: str | None = None
    version: str | None = None


class ServedModel:
    """A loaded pyfunc model with its description; `predict` is safe to call from threads."""

    def __init__(self, pyfunc_model: PyFuncModel, description: ModelDescription) -> None:
        self.pyfunc_model = pyfunc_model
        self.description = description
        self.input_schema: Schema | None = pyfunc_model.metadata.get_input_schema()
        self.params_schema: ParamSchema | None = pyfunc_model.metadata.get_params_schema()
        self._direct_predict = build_direct_predict(pyfunc_model)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict as `PyFuncModel.predict` does; without its second schema pass when that
        pass would change nothing (see app.direct_predict)."""
        if self._direct_predict is not None and self._direct_predict.accepts(data):
            return self._direct_predict(data, params)
        return self.pyfunc_model.predict(data, params=params)

    def input_example(self) -> pd.DataFrame | None:
        """The example logged with the model, when it is tabular."""
        try:
            example = self.pyfunc_model.input_example
        except Exception:  # an unreadable example only costs the docs and the warm-up
            logger.warning("the model's input example cannot be read", exc_info=True)
            return None
        return example if isinstance(example, pd.DataFrame) else None


def load_served_model(uri: str) -> ServedModel:
    """Resolve, download and load `uri`; any failure becomes one ModelLoadError."""
    started = time.perf_counter()
    try:
        origin = resolve_origin(uri)
        local_path = _local_copy(uri, origin)
        mlmodel = Model.load(local_path)
        pyfunc_model = mlflow.pyfunc.load_model(
            local_path, model_config=_config_overrides(mlmodel, origin)
        )
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"cannot load model '{uri}': {type(error).__name__}: {error}"
        ) from error
    description = ModelDescription(
        requested_uri=uri,
        resolved_uri=origin.resolved_uri,
        name=origin.name,
        version=origin.version,
        run_id=mlmodel.run_id,
        model_id=getattr(mlmodel, "model_id", None),
        signature=mlmodel.signature.to_dict() if mlmodel.signature else None,
        training_profile=(mlmodel.metadata or {}).get("training_profile"),
        load_seconds=round(time.perf_counter() - started, 3),
        packages=_package_versions(),
    )
    return ServedModel(pyfunc_model, description)


def resolve_origin(uri: str) -> RegistryOrigin:
    """Turn a stage, alias or `latest` URI into `models:/NAME/VERSION`; read exported dirs."""
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
    with warnings.catch_warnings():
        # Stages are deprecated in MLflow 3 but models:/NAME/Production is part of our contract.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            resolved = get_model_name_and_version(mlflow.MlflowClient(), uri)
        except Exception as error:
            raise ModelLoadError(
                f"cannot resolve model '{uri}' in the registry at "
                f"{mlflow.get_registry_uri()}: {type(error).__name__}: {error}"
            ) from error
    if len(resolved) == 1:  # models:/m-<id>, a logged model outside the registry
        return RegistryOrigin(resolved_uri=uri)
    name, version = resolved
    return RegistryOrigin(resolved_uri=f"models:/{name}/{version}", name=name, version=str(version))


def _local_copy(uri: str, origin: RegistryOrigin) -> str:
    if Path(uri).is_dir():
        return uri
    return str(mlflow.artifacts.download_artifacts(artifact_uri=origin.resolved_uri))


def _config_overrides(mlmodel: Model, origin: RegistryOrigin) -> dict[str, Any] | None:
    """Tell a model that accepts them its registry name and version (see model_wrapper)."""
    logged = (mlmodel.flavors.get("python_function") or {}).get("config") or {}
    identity = {"model_name": origin.name, "model_version": origin.version}
    overrides = {key: value for key, value in identity.items() if key in logged and value}
    return overrides or None


def _package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in REPORTED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
