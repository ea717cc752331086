"""Download a registry model version into a directory, for baking it into an image.

    python -m registry_scripts.export --model-uri models:/credit-risk-scoring/3 --output /opt/model

The directory is an ordinary MLflow model plus registry_origin.json, which tells the
server the registry name and version it came from: serving with MODEL_URI=/opt/model then
needs no registry at start-up and still reports what it serves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import mlflow

from app.model import REGISTRY_ORIGIN_FILE, resolve_origin

logger = logging.getLogger(__name__)


def export_model(model_uri: str, output: Path) -> dict[str, str | None]:
    """Resolve `model_uri` to a concrete version, download it to `output`, record its origin."""
    origin = resolve_origin(model_uri)
    output.mkdir(parents=True, exist_ok=True)
    mlflow.artifacts.download_artifacts(artifact_uri=origin.resolved_uri, dst_path=str(output))
    run_id = mlflow.models.Model.load(str(output)).run_id
    record = {**asdict(origin), "requested_uri": model_uri, "run_id": run_id}
    (output / REGISTRY_ORIGIN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    logger.info("exported %s (%s) to %s", model_uri, origin.resolved_uri, output)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry_scripts.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-uri", required=True, help="any MLflow model URI")
    parser.add_argument("--output", required=True, type=Path, help="directory to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    print(json.dumps(export_model(args.model_uri, args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
