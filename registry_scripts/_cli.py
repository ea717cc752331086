"""Plumbing every command shares: argparse, logs on stderr, one JSON line on stdout, exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Any, NoReturn

import mlflow
from mlflow import MlflowClient

from registry_scripts._client import create_client, redact_uri, translate_error
from registry_scripts._errors import RegistryScriptError, UsageError
from registry_scripts._registry import DEFAULT_MODEL_NAME

Action = Callable[[argparse.Namespace, MlflowClient], dict[str, Any]]

EXIT_CODES_HELP = """\
output: one JSON line on stdout ("ok": true|false); logs on stderr.
exit codes: 0 ok, 1 unexpected error, 2 usage error, 3 quality gate failed,
  4 registry unreachable, 5 not found, 6 registry state conflicts with the request.
registry: MLFLOW_TRACKING_URI (default sqlite:///mlflow.db); credentials from
  MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN."""

logger = logging.getLogger("registry_scripts")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through our JSON line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def build_parser(command: str, description: str | None) -> argparse.ArgumentParser:
    return _Parser(
        prog=f"python -m registry_scripts.{command}",
        description=description,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name",
        default=DEFAULT_MODEL_NAME,
        help="registered model name (default: %(default)s)",
    )


def emit(result: dict[str, Any]) -> None:
    """Write the single machine-readable result line."""
    sys.stdout.write(json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def run(parser: argparse.ArgumentParser, action: Action, argv: Sequence[str] | None) -> int:
    """Parse, act, print the JSON line and return the exit code; never raises except --help."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args = parser.parse_args(argv)
        # Libraries that print() must not corrupt the JSON line: stdout is ours alone.
        with redirect_stdout(sys.stderr):
            result = action(args, create_client())
    except RegistryScriptError as exc:
        error = exc
    except Exception as exc:
        error = translate_error(exc, mlflow.get_tracking_uri())
        if type(error) is RegistryScriptError:  # not one we expect: keep the traceback
            logger.exception("unexpected failure")
    else:
        emit({"ok": True, **result})
        return 0
    logger.error("%s (exit code %d)", error, error.exit_code)
    emit(
        {
            **error.details,
            "ok": False,
            "error": str(error),
            "exit_code": error.exit_code,
            "tracking_uri": redact_uri(mlflow.get_tracking_uri()),
        }
    )
    return error.exit_code
