"""Make a registered model version the Production version.

The `production` alias moves to the version and the version it replaces keeps the
`previous` alias; the Production stage follows (the old holder is archived), so
models:/NAME@production and models:/NAME/Production name the same version. Who, when,
which pipeline and, with --require-gate, the gate's metric, floor, margin and value are
written as `audit.*` version tags. With --require-shadow-agreement, the version must have
been a serving pod's shadow model (SHADOW_MODEL_URI), compared with the served model on at
least --min-shadow-rows rows, and have agreed with it at least that share on every checked
field (registry_scripts._shadow); what it showed is written as audit tags too. Promoting the
current Production version again changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._errors import GateFailedError, UsageError
from registry_scripts._promotion import promote_version
from registry_scripts._registry import (
    GATE_PARAMETER_TAGS,
    GATE_STATUS_TAG,
    check_gate_parameters,
    check_version_number,
)
from registry_scripts._shadow import add_source_arguments, check_shadow_agreement, read_evidence


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
    shadow = None
    if args.require_shadow_agreement is not None:
        evidence = read_evidence(
            args.shadow_metrics_url, args.shadow_prometheus, args.shadow_selector
        )
        shadow = check_shadow_agreement(
            evidence,
            name=args.name,
            version=version,
            bound=args.require_shadow_agreement,
            min_rows=args.min_shadow_rows,
            fields=[name.strip() for name in args.shadow_fields.split(",") if name.strip()],
        )
    return promote_version(client, args.name, version, gate=gate, shadow=shadow)


def build_promote_parser() -> argparse.ArgumentParser:
    parser = build_parser("promote", __doc__)
    add_name_argument(parser)
    parser.add_argument("--version", required=True, help="version number to promote")
    parser.add_argument(
        "--require-gate",
        action="store_true",
        help="refuse (exit 3) unless `validate` passed this version (tag gate.status=passed)",
    )
    parser.add_argument(
        "--require-shadow-agreement",
        type=float,
        metavar="SHARE",
        help="refuse (exit 3) unless this version, as a serving pod's shadow model, agreed with "
        "the served model on at least this share of rows, on every checked field",
    )
    parser.add_argument(
        "--min-shadow-rows",
        type=int,
        default=500,
        help="with --require-shadow-agreement: rows the shadow must have compared "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--shadow-fields",
        default="",
        metavar="F1,F2",
        help="with --require-shadow-agreement: the output fields to check, comma-separated "
        "(default: every non-numeric field; a numeric one named counts exact equality)",
    )
    add_source_arguments(parser, prefix="shadow-")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_promote_parser(), _promote, argv)


if __name__ == "__main__":
    sys.exit(main())
