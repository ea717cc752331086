"""Make a registered model version the Production version.

The `production` alias moves to the version and the version it replaces keeps the
`previous` alias; the Production stage follows (the old holder is archived), so
models:/NAME@production and models:/NAME/Production name the same version. Who, when,
which pipeline and, with --require-gate, the gate's metric, floor, margin and value are
written as `audit.*` version tags. Promoting the current Production version again changes
nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._errors import GateFailedError, UsageError
from registry_scripts._registry import (
    GATE_PARAMETER_TAGS,
    GATE_STATUS_TAG,
    PREVIOUS_ALIAS,
    PRODUCTION_ALIAS,
    PRODUCTION_STAGE,
    audit_context,
    check_gate_parameters,
    check_version_number,
    get_aliases,
    get_production_version,
    get_ready_version,
    move_production_stage,
    set_version_tags,
    versions_in_stage,
)

logger = logging.getLogger(__name__)


def promote_version(
    client: MlflowClient,
    name: str,
    version: str | int,
    *,
    reason: str = "promote",
    gate: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Move `production` (alias and stage) to `version`; idempotent.

    `gate` holds the gate.* tags the promotion relied on; every promotion writes all the
    audit.promoted_gate_* tags (empty without a gate), so none is left from an older one.
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
        },
    )
    logger.info("%s version %s is Production (was %s)", name, version, current or "none")
    return {**result, "changed": True, "audit": audit}


def check_gate_passed(tags: Mapping[str, str], name: str, version: str) -> dict[str, str]:
    """The gate.* tags a promotion may rely on: passed, with parameters that could fail.

    A pass recorded with a NaN floor or margin (by a `validate` that did not refuse them)
    proves nothing, so it does not count.
    """
    details = {"name": name, "version": version}
    if tags.get(GATE_STATUS_TAG) != "passed":
        raise GateFailedError(
            f"{name} version {version} has not passed the quality gate "
            f"({GATE_STATUS_TAG}={tags.get(GATE_STATUS_TAG)!r}); run registry_scripts.validate",
            details,
        )
    try:
        check_gate_parameters(float(tags["gate.floor"]), float(tags["gate.margin"]))
    except (KeyError, ValueError, UsageError) as exc:
        raise GateFailedError(
            f"{name} version {version} passed a gate whose parameters are not valid ({exc}); "
            "run registry_scripts.validate again",
            details,
        ) from exc
    return {tag: tags[tag] for tag in GATE_PARAMETER_TAGS if tag in tags}


def _promote(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    version = check_version_number(args.version)
    gate = None
    if args.require_gate:
        tags = client.get_model_version(args.name, version).tags
        gate = check_gate_passed(tags, args.name, version)
    return promote_version(client, args.name, version, gate=gate)


def build_promote_parser() -> argparse.ArgumentParser:
    parser = build_parser("promote", __doc__)
    add_name_argument(parser)
    parser.add_argument("--version", required=True, help="version number to promote")
    parser.add_argument(
        "--require-gate",
        action="store_true",
        help="refuse (exit 3) unless `validate` passed this version (tag gate.status=passed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_promote_parser(), _promote, argv)


if __name__ == "__main__":
    sys.exit(main())
