"""How a logged model becomes a registered version: the rule that `register` and
`train --register` share."""

from __future__ import annotations

import logging

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from registry_scripts._errors import NotFoundError, UsageError
from registry_scripts._registry import audit_context

logger = logging.getLogger(__name__)

_LOGGED_MODEL_PREFIX = "models:/m-"
_RUNS_PREFIX = "runs:/"


def find_run_model_uri(client: MlflowClient, run_id: str, model_name: str | None = None) -> str:
    """The models:/m-<id> URI of the model a run logged (the one named `model_name` if given).

    Several models of that name: the one logged at the highest step wins, as in
    mlflow.register_model. Several models and no name: ambiguous, a usage error.
    """
    outputs = client.get_run(run_id).outputs
    model_outputs = outputs.model_outputs if outputs else []
    candidates = [
        output
        for output in model_outputs
        if model_name is None or client.get_logged_model(output.model_id).name == model_name
    ]
    if not candidates:
        which = f" named {model_name!r}" if model_name else ""
        raise NotFoundError(f"run {run_id} logged no model{which}", {"run_id": run_id})
    if model_name is None and len(candidates) > 1:
        raise UsageError(
            f"run {run_id} logged {len(candidates)} models; choose one with --model-uri",
            {"run_id": run_id, "model_ids": [c.model_id for c in candidates]},
        )
    best = max(candidates, key=lambda output: output.step)
    return f"models:/{best.model_id}"


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name)
        logger.info("created registered model %s", name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def register_model_version(
    client: MlflowClient, model_uri: str, name: str, *, run_id: str | None = None
) -> ModelVersion:
    """Create a new version of `name` from `model_uri`, creating the registered model if needed.

    A models:/m-<id> URI links the version to its logged model (and its run, unless
    `run_id` is given); a runs:/<run_id>/<name> URI is resolved to that run's logged model.
    """
    if model_uri.startswith(_RUNS_PREFIX):
        run_part, _, artifact_name = model_uri.removeprefix(_RUNS_PREFIX).partition("/")
        model_uri = find_run_model_uri(client, run_part, artifact_name or None)
        run_id = run_id or run_part
    model_id = None
    if model_uri.startswith(_LOGGED_MODEL_PREFIX):
        model_id = model_uri.removeprefix("models:/")
        run_id = run_id or client.get_logged_model(model_id).source_run_id
    elif model_uri.startswith("models:/"):
        raise UsageError(
            f"{model_uri} is already a registered model URI; register a logged model "
            "(models:/m-<id>, runs:/<run_id>/<name>) or a storage location"
        )
    _ensure_registered_model(client, name)
    audit = audit_context()
    model_version = client.create_model_version(
        name,
        model_uri,
        run_id=run_id,
        model_id=model_id,
        tags={
            "audit.registered_by": audit["by"],
            "audit.registered_at": audit["at"],
            "audit.registered_pipeline": audit["pipeline"],
        },
    )
    logger.info("registered %s as %s version %s", model_uri, name, model_version.version)
    return model_version
