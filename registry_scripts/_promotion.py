"""How a version becomes Production (aliases, stage, audit tags): the one rule that
`promote`, `rollback` and `train --promote` share."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mlflow import MlflowClient

from registry_scripts._registry import (
    GATE_PARAMETER_TAGS,
    PREVIOUS_ALIAS,
    PRODUCTION_ALIAS,
    PRODUCTION_STAGE,
    audit_context,
    check_version_number,
    get_aliases,
    get_production_version,
    get_ready_version,
    move_production_stage,
    set_version_tags,
    versions_in_stage,
)

logger = logging.getLogger(__name__)

# What `promote --require-shadow-agreement` relied on (registry_scripts._shadow).
SHADOW_EVIDENCE_TAGS = ("shadow.bound", "shadow.rows", "shadow.agreement")


def promote_version(
    client: MlflowClient,
    name: str,
    version: str | int,
    *,
    reason: str = "promote",
    gate: Mapping[str, str] | None = None,
    shadow: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Move `production` (alias and stage) to `version`; idempotent.

    `gate` holds the gate.* tags the promotion relied on, `shadow` the shadow.* evidence
    (registry_scripts._shadow); every promotion writes all the audit.promoted_gate_* and
    audit.promoted_shadow_* tags (empty without), so none is left from an older one.
    Order matters for a run that dies half-way: `previous` is set before `production`
    moves and the stage follows the alias, so a re-run finishes the job.
    """
    version = check_version_number(version)
    get_ready_version(client, name, version)
    aliases = get_aliases(client, name)
    current = get_production_version(client, name)
    stage_holders = versions_in_stage(client, name, PRODUCTION_STAGE)
    previous = current if current != version else aliases.get(PREVIOUS_ALIAS)
    result: dict[str, Any] = {
        "name": name,
        "version": version,
        "previous_version": previous,
        "uris": [f"models:/{name}@{PRODUCTION_ALIAS}", f"models:/{name}/{PRODUCTION_STAGE}"],
    }
    if aliases.get(PRODUCTION_ALIAS) == version and stage_holders == [version]:
        logger.info("%s version %s is already Production; nothing to do", name, version)
        return {**result, "changed": False}

    if current is not None and current != version:
        client.set_registered_model_alias(name, PREVIOUS_ALIAS, current)
    client.set_registered_model_alias(name, PRODUCTION_ALIAS, version)
    move_production_stage(client, name, version)
    audit = audit_context()
    set_version_tags(
        client,
        name,
        version,
        {
            "audit.promoted_by": audit["by"],
            "audit.promoted_at": audit["at"],
            "audit.promoted_pipeline": audit["pipeline"],
            "audit.promoted_reason": reason,
            "audit.promoted_from_version": current or "",
            **{
                f"audit.promoted_{tag.replace('.', '_')}": (gate or {}).get(tag, "")
                for tag in GATE_PARAMETER_TAGS
            },
            **{
                f"audit.promoted_{tag.replace('.', '_')}": (shadow or {}).get(tag, "")
                for tag in SHADOW_EVIDENCE_TAGS
            },
        },
    )
    logger.info("%s version %s is Production (was %s)", name, version, current or "none")
    return {**result, "changed": True, "audit": audit}
