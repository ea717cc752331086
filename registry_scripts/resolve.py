"""Print the concrete version a registry URI names, so a deploy can pin it.

Accepts models:/NAME/Production (any stage), models:/NAME@ALIAS, models:/NAME/latest and
models:/NAME/VERSION. With --expect-version the command fails (exit 6) when the URI names
another version, e.g. when Production moved since this pipeline built its image.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from registry_scripts._cli import build_parser, run
from registry_scripts._errors import ConflictError, NotFoundError, UsageError
from registry_scripts._registry import (
    check_version_number,
    get_aliases,
    get_ready_version,
    list_versions,
    versions_in_stage,
)

_STAGES = {"production": "Production", "staging": "Staging", "archived": "Archived"}
_DOTENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RegistryReference:
    """A parsed models:/ URI that names a registered model version indirectly or directly."""

    name: str
    kind: Literal["alias", "stage", "version", "latest"]
    value: str


def parse_registry_uri(uri: str) -> RegistryReference:
    if not uri.startswith("models:/"):
        raise UsageError(f"not a registry URI (models:/...): {uri!r}")
    rest = uri.removeprefix("models:/").rstrip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in name:
            return RegistryReference(name, "alias", alias)
    else:
        name, _, ref = rest.partition("/")
        if ref.isdigit():
            return RegistryReference(name, "version", check_version_number(ref))
        if ref.lower() == "latest":
            return RegistryReference(name, "latest", "latest")
        if ref.lower() in _STAGES:
            return RegistryReference(name, "stage", _STAGES[ref.lower()])
    raise UsageError(
        f"cannot resolve {uri!r}: expected models:/NAME/VERSION, models:/NAME/STAGE, "
        "models:/NAME/latest or models:/NAME@ALIAS"
    )


def resolve_registry_uri(client: MlflowClient, uri: str) -> ModelVersion:
    """The READY model version `uri` names right now."""
    ref = parse_registry_uri(uri)
    if ref.kind == "version":
        version = ref.value
    elif ref.kind == "alias":
        found = get_aliases(client, ref.name).get(ref.value)
        if found is None:
            raise NotFoundError(f"{ref.name} has no alias {ref.value!r}", {"uri": uri})
        version = found
    else:
        candidates = (
            versions_in_stage(client, ref.name, ref.value)
            if ref.kind == "stage"
            else [str(v.version) for v in list_versions(client, ref.name)]
        )
        if not candidates:
            raise NotFoundError(f"no version of {ref.name} matches {uri}", {"uri": uri})
        version = candidates[0]
    return get_ready_version(client, ref.name, version)


def append_dotenv(path: Path, variable: str, value: str) -> None:
    """Add VARIABLE=value to a dotenv file (GitLab `artifacts:reports:dotenv` format)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{variable}={value}\n")


def _resolve(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    if args.dotenv_var and not _DOTENV_NAME.fullmatch(args.dotenv_var):
        raise UsageError(f"not a variable name: {args.dotenv_var!r}")
    model_version = resolve_registry_uri(client, args.uri)
    version = str(model_version.version)
    result = {
        "uri": args.uri,
        "name": model_version.name,
        "version": version,
        "pinned_uri": f"models:/{model_version.name}/{version}",
        "run_id": model_version.run_id,
    }
    if args.expect_version is not None:
        expected = check_version_number(args.expect_version)
        if expected != version:
            raise ConflictError(
                f"{args.uri} is version {version}, expected {expected}",
                {**result, "expected_version": expected},
            )
    if args.dotenv:
        append_dotenv(args.dotenv, args.dotenv_var, version)
    return result


def build_resolve_parser() -> argparse.ArgumentParser:
    parser = build_parser("resolve", __doc__)
    parser.add_argument("--uri", required=True, help="e.g. models:/credit-risk-scoring/Production")
    parser.add_argument("--expect-version", help="fail with exit code 6 unless it resolves to this")
    parser.add_argument(
        "--dotenv", type=Path, help="also append VAR=VERSION to this file (GitLab dotenv report)"
    )
    parser.add_argument(
        "--dotenv-var", default="MODEL_VERSION", help="variable name for --dotenv (%(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_resolve_parser(), _resolve, argv)


if __name__ == "__main__":
    sys.exit(main())
