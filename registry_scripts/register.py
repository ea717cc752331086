"""Register a logged model as a new version of a registered model and print the version.

Give the run (`--run-id`: its logged model is used) or the model URI (`--model-uri`,
e.g. the models:/m-<id> URI that `registry_scripts.train` prints).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mlflow import MlflowClient

from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._registration import find_run_model_uri, register_model_version


def _register(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    model_uri = args.model_uri or find_run_model_uri(client, args.run_id)
    model_version = register_model_version(client, model_uri, args.name, run_id=args.run_id)
    return {
        "name": model_version.name,
        "version": str(model_version.version),
        "run_id": model_version.run_id,
        "source": model_version.source,
        "uri": f"models:/{model_version.name}/{model_version.version}",
    }


def build_register_parser() -> argparse.ArgumentParser:
    parser = build_parser("register", __doc__)
    add_name_argument(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-id", help="register the model logged by this run")
    source.add_argument("--model-uri", help="models:/m-<id>, runs:/<run_id>/<name> or a path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_register_parser(), _register, argv)


if __name__ == "__main__":
    sys.exit(main())
