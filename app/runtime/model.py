"""Load one model from an MLflow URI, describe it, and predict with it.

The URI is resolved to a concrete registry version first and that version is loaded, so
what /version reports is exactly what serves, even if the stage or alias moves meanwhile.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import Model
from mlflow.pyfunc import PyFuncModel
from mlflow.types import ParamSchema, Schema
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from app.errors import ModelLoadError
from app.mlflow_compat import signature_from_type_hints
from app.protocol.parsing import InputContract
from app.runtime.direct_predict import build_direct_predict
from model_fetch.guardrails import read_rules_text, sha256_of
from model_fetch.origin import RegistryOrigin, download_model, resolve_origin

logger = logging.getLogger(__name__)

# Reported in /version for every model; the model's own requirements are added to them.
SERVER_PACKAGES = ("mlflow", "fastapi", "gunicorn", "uvicorn", "pandas", "numpy")
# The block of the MLmodel file's metadata where a model tells the server how to serve it.
SERVING_METADATA_KEY = "serving"


@dataclass(frozen=True)
class ServingHints:
    """What a model declares about itself in `metadata["serving"]` when it is logged.

    `rows_are_independent`: each row's output depends on that row alone, so requests may
    be predicted together (micro-batching) without changing any answer.
    `count_predictions_by`: an output field whose values are worth counting in
    `model_predictions_total` (a class, a risk level).
    """

    rows_are_independent: bool = False
    count_predictions_by: str | None = None

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> ServingHints:
        declared = (metadata or {}).get(SERVING_METADATA_KEY) or {}
        if not isinstance(declared, dict):
            raise ModelLoadError(f"the model's metadata '{SERVING_METADATA_KEY}' is not a mapping")
        field_name = declared.get("count_predictions_by")
        return cls(
            rows_are_independent=declared.get("rows_are_independent") is True,
            count_predictions_by=str(field_name) if field_name else None,
        )


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
    # The version's business rules file (app.guardrails), as attached to it.
    guardrails_text: str | None = field(default=None, repr=False)
    load_seconds: float = 0.0
    packages: dict[str, str] = field(default_factory=dict)
    serving: ServingHints = field(default_factory=ServingHints)

    @property
    def serving_name(self) -> str:
        """The name clients address the model by in V2 paths (/v2/models/{name}): its
        registry name, else the last part of its URI (a directory's name, say)."""
        if self.name:
            return self.name
        return self.resolved_uri.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] or "model"

    def as_dict(self) -> dict[str, Any]:
        """What /version shows: everything but the (large) training profile and rules."""
        described = asdict(self)
        described["has_training_profile"] = described.pop("training_profile") is not None
        rules = described.pop("guardrails_text")
        described["guardrails_sha256"] = None if rules is None else sha256_of(rules)
        return described


class ServedModel:
    """A loaded pyfunc model with its description; `predict` is safe to call from threads."""

    def __init__(
        self,
        pyfunc_model: PyFuncModel,
        description: ModelDescription,
        serving_input: str | None = None,
    ) -> None:
        self.pyfunc_model = pyfunc_model
        self.description = description
        self.input_schema: Schema | None = pyfunc_model.metadata.get_input_schema()
        self.params_schema: ParamSchema | None = pyfunc_model.metadata.get_params_schema()
        self.contract = InputContract(
            self.input_schema,
            self.params_schema,
            from_type_hints=signature_from_type_hints(pyfunc_model),
        )
        # The request body MLflow logged with the model's input example (JSON), if any.
        self.serving_input = serving_input
        self._direct_predict = build_direct_predict(pyfunc_model)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict as `PyFuncModel.predict` does; without its second schema pass when that
        pass would change nothing (see app.runtime.direct_predict)."""
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
    """Resolve, download and load `uri`; any failure becomes one ModelLoadError.

    Registry calls use bounded retries (model_fetch.retries), so a registry that is down
    fails the start in seconds rather than after MLflow's minutes of retries.
    """
    started = time.perf_counter()
    try:
        origin = resolve_origin(uri)
    except Exception as error:
        raise ModelLoadError(
            f"cannot resolve model '{uri}' in the registry at "
            f"{mlflow.get_registry_uri()}: {type(error).__name__}: {error}"
        ) from error
    try:
        local_path = str(download_model(uri, origin))
        mlmodel = Model.load(local_path)
        pyfunc_model = mlflow.pyfunc.load_model(
            local_path, model_config=config_overrides(mlmodel, origin)
        )
        guardrails_text = read_rules_text(origin, Path(local_path))
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
        guardrails_text=guardrails_text,
        load_seconds=round(time.perf_counter() - started, 3),
        packages=_package_versions(Path(local_path)),
        serving=ServingHints.from_metadata(mlmodel.metadata),
    )
    return ServedModel(pyfunc_model, description, mlmodel.get_serving_input(local_path))


def config_overrides(mlmodel: Model, origin: RegistryOrigin) -> dict[str, Any] | None:
    """Tell a model that accepts them its registry name and version (see model_wrapper).

    Public: the batch command hands the same overrides to MLflow's spark_udf."""
    logged = (mlmodel.flavors.get("python_function") or {}).get("config") or {}
    identity = {"model_name": origin.name, "model_version": origin.version}
    overrides = {key: value for key, value in identity.items() if key in logged and value}
    return overrides or None


def _package_versions(model_dir: Path) -> dict[str, str]:
    """Installed versions of the server's packages and of those the model requires."""
    versions = {"python": sys.version.split()[0]}
    for package in (*SERVER_PACKAGES, *_required_packages(model_dir)):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _required_packages(model_dir: Path) -> list[str]:
    """Names from the model's requirements.txt, which MLflow writes when it logs a model."""
    requirements = model_dir / "requirements.txt"
    if not requirements.is_file():
        return []
    names: list[str] = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            names.append(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue  # a URL or a path: nothing to look up
    return names
