"""Put the previous version back into Production (alias and stage), with audit tags.

Without --to-version the target is the `previous` alias. Like `kubectl rollout undo`, a
second rollback goes forward again: the version rolled back from becomes `previous`.
With --to-version the command is idempotent.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._errors import NotFoundError
from registry_scripts._promotion import promote_version
from registry_scripts._registry import (
    PREVIOUS_ALIAS,
    audit_context,
    check_version_number,
    get_aliases,
    get_production_version,
    set_version_tags,
)

logger = logging.getLogger(__name__)


def rollback_production(
    client: MlflowClient, name: str, to_version: str | None = None
) -> dict[str, Any]:
    """Move Production to `to_version`, or to the `previous` alias when not given."""
    current = get_production_version(client, name)
    if current is None:
        raise NotFoundError(f"{name} has no Production version to roll back", {"name": name})
    target = (
        check_version_number(to_version)
        if to_version is not None
        else get_aliases(client, name).get(PREVIOUS_ALIAS)
    )
    if target is None:
        raise NotFoundError(
            f"{name} has no '{PREVIOUS_ALIAS}' alias; pass --to-version", {"name": name}
        )
    result = promote_version(client, name, target, reason="rollback")
    if result["changed"] and current != target:
        audit = audit_context()
        set_version_tags(
            client,
            name,
            current,
            {
                "audit.rolled_back_by": audit["by"],
                "audit.rolled_back_at": audit["at"],
                "audit.rolled_back_pipeline": audit["pipeline"],
                "audit.rolled_back_to_version": target,
            },
        )
        logger.info("%s rolled back from version %s to %s", name, current, target)
    return {**result, "rolled_back_from": current if current != target else None}


def _rollback(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    return rollback_production(client, args.name, args.to_version)


def build_rollback_parser() -> argparse.ArgumentParser:
    parser = build_parser("rollback", __doc__)
    add_name_argument(parser)
    parser.add_argument("--to-version", help="version to restore (default: the 'previous' alias)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_rollback_parser(), _rollback, argv)


if __name__ == "__main__":
    sys.exit(main())
