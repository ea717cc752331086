"""Show a registered model's versions: stage, aliases, gate result, creation time.

The JSON line holds everything; stderr gets a table for people.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._registry import (
    PRODUCTION_ALIAS,
    PRODUCTION_STAGE,
    get_aliases,
    list_versions,
    versions_in_stage,
)

logger = logging.getLogger(__name__)


def describe_model(client: MlflowClient, name: str) -> dict[str, Any]:
    """Every version with its stage, aliases, `gate.*` and `audit.*` tags."""
    aliases = get_aliases(client, name)
    aliases_by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        aliases_by_version.setdefault(version, []).append(alias)
    versions = []
    for model_version in list_versions(client, name):
        version = str(model_version.version)
        tags = model_version.tags
        created = datetime.fromtimestamp(model_version.creation_timestamp / 1000, tz=UTC)
        versions.append(
            {
                "version": version,
                "stage": model_version.current_stage,
                "aliases": aliases_by_version.get(version, []),
                "status": model_version.status,
                "created_at": created.isoformat(timespec="seconds"),
                "run_id": model_version.run_id,
                "gate": {
                    k.removeprefix("gate."): v for k, v in tags.items() if k.startswith("gate.")
                },
                "audit": {
                    k.removeprefix("audit."): v for k, v in tags.items() if k.startswith("audit.")
                },
            }
        )
    staged = versions_in_stage(client, name, PRODUCTION_STAGE)
    production = {"alias": aliases.get(PRODUCTION_ALIAS), "stage": staged[0] if staged else None}
    return {
        "name": name,
        "production": production,
        # False when someone moved the stage or the alias by hand: promote or rollback fixes it.
        "consistent": production["alias"] == production["stage"] and len(staged) <= 1,
        "versions": versions,
    }


def _format_table(description: dict[str, Any]) -> str:
    rows = [("VERSION", "STAGE", "ALIASES", "GATE", "CREATED")]
    for v in description["versions"]:
        gate = v["gate"]
        gate_text = (
            f"{gate['status']} {gate.get('metric', '?')}={gate.get('value', '?')}"
            if "status" in gate
            else "-"
        )
        rows.append(
            (v["version"], v["stage"], ",".join(v["aliases"]) or "-", gate_text, v["created_at"])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _status(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    description = describe_model(client, args.name)
    logger.info("%s\n%s", args.name, _format_table(description))
    if not description["consistent"]:
        logger.warning("the production alias and the Production stage disagree")
    return description


def build_status_parser() -> argparse.ArgumentParser:
    parser = build_parser("status", __doc__)
    add_name_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_status_parser(), _status, argv)


if __name__ == "__main__":
    sys.exit(main())
