"""Registry reads and writes shared by the commands: aliases, stages, versions, audit tags."""

from __future__ import annotations

import getpass
import math
import os
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from registry_scripts._errors import ConflictError, UsageError

DEFAULT_MODEL_NAME = "credit-risk-scoring"
PRODUCTION_ALIAS = "production"
PREVIOUS_ALIAS = "previous"
PRODUCTION_STAGE = "Production"
# Written by `validate` on the candidate version; `promote --require-gate` reads the status
# and the parameters the gate ran with.
GATE_STATUS_TAG = "gate.status"
GATE_PARAMETER_TAGS = ("gate.metric", "gate.floor", "gate.margin", "gate.value")
_PAGE_SIZE = 1000


def check_version_number(version: str | int) -> str:
    """Return the version as MLflow's canonical string, refusing anything but a number."""
    text = str(version).strip()
    # isdigit() alone takes "²" and other Unicode digits, which int() refuses.
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise UsageError(f"model version must be a positive integer, got {version!r}")
    return str(int(text))


def check_gate_parameters(floor: float, margin: float) -> None:
    """Refuse a gate that cannot fail: NaN or infinity make every comparison pass.

    The metrics are AUC-like scores in [0, 1]; the margin is the largest drop allowed.
    """
    if not (math.isfinite(floor) and 0.0 <= floor <= 1.0):
        raise UsageError(f"the gate floor must be a number from 0 to 1, got {floor}")
    if not (math.isfinite(margin) and margin >= 0.0):
        raise UsageError(f"the gate margin must be a finite number of at least 0, got {margin}")


def get_ready_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Fetch a version that can be served; a failed or pending registration is a conflict."""
    model_version = client.get_model_version(name, version)
    if model_version.status != "READY":
        raise ConflictError(
            f"{name} version {version} is {model_version.status}, not READY",
            {"name": name, "version": version, "status": model_version.status},
        )
    return model_version


def get_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version for a registered model (search results omit aliases, this does not)."""
    return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}


def list_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of a registered model, newest first, across result pages."""
    versions: list[ModelVersion] = []
    page_token: str | None = None
    while True:
        page = client.search_model_versions(
            f"name = '{name}'", max_results=_PAGE_SIZE, page_token=page_token
        )
        versions.extend(page)
        page_token = page.token
        if not page_token:
            break
    return sorted(versions, key=lambda v: int(v.version), reverse=True)


def versions_in_stage(client: MlflowClient, name: str, stage: str) -> list[str]:
    """Versions currently in a (deprecated but still served) registry stage, newest first."""
    return [
        str(v.version)
        for v in list_versions(client, name)
        if (v.current_stage or "").lower() == stage.lower()
    ]


def get_production_version(client: MlflowClient, name: str) -> str | None:
    """The version serving Production: the `production` alias, else the Production stage.

    The stage fallback covers registries promoted by hand before aliases existed.
    """
    alias_version = get_aliases(client, name).get(PRODUCTION_ALIAS)
    if alias_version is not None:
        return alias_version
    staged = versions_in_stage(client, name, PRODUCTION_STAGE)
    return staged[0] if staged else None


def move_production_stage(client: MlflowClient, name: str, version: str) -> None:
    """Put `version` in the Production stage and archive whatever held it.

    Stages are deprecated since MLflow 2.9, but `models:/NAME/Production` is part of our
    interface, so the deprecation warning is expected here and silenced here only.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(
            name, version, PRODUCTION_STAGE, archive_existing_versions=True
        )


def audit_context(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Who acts, when, and from which pipeline, read from GitLab CI variables when present."""
    actor = environ.get("GITLAB_USER_LOGIN")
    if not actor:
        try:
            actor = getpass.getuser()
        except OSError:  # no passwd entry for the uid, common in containers
            actor = "unknown"
    pipeline = environ.get("CI_PIPELINE_URL") or environ.get("CI_PIPELINE_ID") or "local"
    return {
        "by": actor,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline": pipeline,
    }


def set_version_tags(
    client: MlflowClient, name: str, version: str, tags: Mapping[str, str]
) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
