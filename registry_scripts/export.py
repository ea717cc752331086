"""Download a registry model version into a directory, for baking it into an image.

    python -m registry_scripts.export --model-uri models:/credit-risk-scoring/3 --output /opt/model

The directory is an ordinary MLflow model plus registry_origin.json, which tells the
server the registry name and version it came from, and guardrails.yaml the version's
business rules when it has some (docs/guardrails.md): serving with MODEL_URI=/opt/model then
needs no registry at start-up and still reports what it serves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from model_fetch.guardrails import RULES_FILE, read_rules_text
from model_fetch.origin import REGISTRY_ORIGIN_FILE, download_model, resolve_origin
from registry_scripts._cli import build_parser, run

logger = logging.getLogger(__name__)


def export_model(model_uri: str, output: Path) -> dict[str, str | None]:
    """Resolve `model_uri` to a concrete version, download it to `output`, record its origin."""
    origin = resolve_origin(model_uri)
    output.mkdir(parents=True, exist_ok=True)
    download_model(model_uri, origin, output)
    run_id = mlflow.models.Model.load(str(output)).run_id
    # The version's business rules travel with it into the image (app.guardrails).
    rules = read_rules_text(origin, None)
    if rules is not None:
        (output / RULES_FILE).write_text(rules, encoding="utf-8")
    record = {**asdict(origin), "requested_uri": model_uri, "run_id": run_id}
    (output / REGISTRY_ORIGIN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    logger.info("exported %s (%s) to %s", model_uri, origin.resolved_uri, output)
    return record


def _export(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    return {**export_model(args.model_uri, args.output), "output": str(args.output)}


def build_export_parser() -> argparse.ArgumentParser:
    parser = build_parser("export", __doc__)
    parser.add_argument("--model-uri", required=True, help="any MLflow model URI")
    parser.add_argument("--output", required=True, type=Path, help="directory to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_export_parser(), _export, argv)


if __name__ == "__main__":
    sys.exit(main())
