"""Attach business rules to a model version, show them, or propose some from its profile.

    python -m registry_scripts.guardrails attach --name NAME --version V --rules rules.yaml
    python -m registry_scripts.guardrails show --name NAME --version V
    python -m registry_scripts.guardrails propose --name NAME --version V --output rules.yaml

`attach` checks the file (format, then every column and type against the version's
signature) and only then stores it on the version (tags guardrails.rules and
guardrails.sha256), so the server that serves the version enforces it and a promotion or
rollback brings it along. `propose` writes a draft from the training profile logged with
the model: numeric ranges widened by a margin, observed category sets, every rule in
shadow mode for a person to review. The format: docs/guardrails.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient

from app.guardrails.rules import GuardrailsError, check_fits, fields_of_signature, parse_rules
from model_fetch.guardrails import RULES_SHA256_TAG, RULES_TAG, sha256_of
from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._errors import NotFoundError, UsageError
from registry_scripts._registry import check_version_number, get_ready_version

# The registry's limit on a model-version tag's value (MLflow 3).
MAX_RULES_CHARS = 100_000
DEFAULT_MARGIN = 0.1


def _model_info(name: str, version: str) -> mlflow.models.model.ModelInfo:
    return mlflow.models.get_model_info(f"models:/{name}/{version}")


def attach_rules(client: MlflowClient, name: str, version: str, text: str) -> dict[str, Any]:
    """Check `text` against the version's signature, then store it on the version."""
    get_ready_version(client, name, version)
    if len(text) > MAX_RULES_CHARS:
        raise UsageError(f"the rules file is above {MAX_RULES_CHARS} characters")
    try:
        guardrails = parse_rules(text)
        signature = _model_info(name, version).signature
        check_fits(guardrails, fields_of_signature(signature.to_dict() if signature else None))
    except GuardrailsError as error:
        raise UsageError(
            f"rules refused for {name} version {version}: {error}",
            {"name": name, "version": version},
        ) from None
    client.set_model_version_tag(name, version, RULES_TAG, text)
    client.set_model_version_tag(name, version, RULES_SHA256_TAG, sha256_of(text))
    return {
        "name": name,
        "version": version,
        "rules": len(guardrails.rules),
        "sha256": guardrails.sha256,
    }


def _attach(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    version = check_version_number(args.version)
    try:
        text = args.rules.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the rules file: {error}") from None
    return attach_rules(client, args.name, version, text)


def _show(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    version = check_version_number(args.version)
    tags = get_ready_version(client, args.name, version).tags
    text = tags.get(RULES_TAG)
    if text is None:
        raise NotFoundError(
            f"{args.name} version {version} has no rules attached",
            {"name": args.name, "version": version},
        )
    return {
        "name": args.name,
        "version": version,
        "sha256": tags.get(RULES_SHA256_TAG),
        "rules": parse_rules(text).describe(),
    }


def _propose(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    version = check_version_number(args.version)
    get_ready_version(client, args.name, version)
    info = _model_info(args.name, version)
    profile = (info.metadata or {}).get("training_profile")
    if not profile:
        raise NotFoundError(
            f"{args.name} version {version} has no training profile to propose rules from",
            {"name": args.name, "version": version},
        )
    signature = info.signature
    fields = fields_of_signature(signature.to_dict() if signature else None)
    rules = propose_rules(profile, args.margin, set(fields.inputs or {}))
    text = "# Proposed from the training profile: review, then set severity and mode.\n"
    text += yaml.safe_dump({"version": 1, "rules": rules}, sort_keys=False)
    parse_rules(text)  # what is written can be attached as it is
    args.output.write_text(text, encoding="utf-8")
    return {"name": args.name, "version": version, "rules": len(rules), "output": str(args.output)}


def propose_rules(
    profile: dict[str, Any], margin: float, columns: set[str]
) -> list[dict[str, Any]]:
    """One shadow rule per profiled input column the signature has: a numeric range (the
    observed one, or the outer decile edges when the profile has no min and max) widened
    by `margin` of its width on each side; the categories seen, when the profile kept all."""
    rules: list[dict[str, Any]] = []
    for column, feature in (profile.get("features") or {}).items():
        if columns and column not in columns:
            continue
        rule: dict[str, Any] = {"id": f"{column}-seen-in-training".replace("_", "-")}
        rule["column"] = column
        if feature.get("kind") == "numeric":
            low = feature.get("min", (feature.get("edges") or [None])[0])
            high = feature.get("max", (feature.get("edges") or [None])[-1])
            if low is None or high is None:
                continue
            width = float(high) - float(low)
            rule["min"] = round(float(low) - margin * width, 6)
            rule["max"] = round(float(high) + margin * width, 6)
        else:
            expected = feature.get("expected") or []
            if not expected or expected[-1] > 0:
                continue  # categories beyond those the profile kept were seen
            rule["in"] = list(feature.get("categories") or [])
        rules.append({**rule, "severity": "major", "mode": "shadow"})
    return rules


def build_guardrails_parser() -> argparse.ArgumentParser:
    parser = build_parser("guardrails", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    attach = commands.add_parser("attach", help="validate a rules file and attach it")
    show = commands.add_parser("show", help="print the rules attached to a version")
    propose = commands.add_parser("propose", help="draft rules from the training profile")
    for sub in (attach, show, propose):
        add_name_argument(sub)
        sub.add_argument("--version", required=True, help="model version number")
    attach.add_argument("--rules", required=True, type=Path, help="the YAML rules file")
    attach.set_defaults(action=_attach)
    show.set_defaults(action=_show)
    propose.add_argument("--output", required=True, type=Path, help="YAML file to write")
    propose.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="widen each range by this share of its width on both sides (%(default)s)",
    )
    propose.set_defaults(action=_propose)
    return parser


def _dispatch(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    result: dict[str, Any] = args.action(args, client)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_guardrails_parser(), _dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
