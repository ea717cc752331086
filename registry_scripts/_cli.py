"""Plumbing every command shares: argparse, logs on stderr, one JSON line on stdout, exit codes.

Both outputs pass model_fetch.redaction here, and only here: the JSON line in `emit`, and
everything written to stderr while a command runs (our logs, MLflow's, warnings, and
whatever libraries print, which is sent to stderr so stdout holds the JSON line alone).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from typing import Any, NoReturn, TextIO, cast

import mlflow
from mlflow import MlflowClient

from model_fetch.redaction import redact, redact_values
from registry_scripts._client import create_client, translate_error
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
    """Write the single machine-readable result line, credentials redacted."""
    plain = json.loads(json.dumps(result, default=str))
    sys.stdout.write(json.dumps(redact_values(plain), sort_keys=True) + "\n")
    sys.stdout.flush()


class _RedactedStream(io.TextIOBase):
    """A text stream that redacts what it forwards (to the stream given at creation)."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()


class _CurrentStderr(io.TextIOBase):
    """Whatever sys.stderr is at the time of writing, so the log handler follows the
    redacting stream that `run` puts in place."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def run(parser: argparse.ArgumentParser, action: Action, argv: Sequence[str] | None) -> int:
    """Parse, act, print the JSON line and return the exit code; never raises except --help."""
    logging.basicConfig(
        level=logging.INFO,
        stream=_CurrentStderr(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stderr = cast(TextIO, _RedactedStream(sys.stderr))  # a TextIOBase, as streams are
    with redirect_stderr(stderr):
        outcome = _act(parser, action, argv, stdout=stderr)
    if isinstance(outcome, RegistryScriptError):
        emit(
            {
                **outcome.details,
                "ok": False,
                "error": str(outcome),
                "exit_code": outcome.exit_code,
                "tracking_uri": mlflow.get_tracking_uri(),
            }
        )
        return outcome.exit_code
    emit({"ok": True, **outcome})
    return 0


def _act(
    parser: argparse.ArgumentParser,
    action: Action,
    argv: Sequence[str] | None,
    *,
    stdout: TextIO,
) -> dict[str, Any] | RegistryScriptError:
    """The action's result, or the error (with its exit code) to report instead.

    What the action's libraries print goes to `stdout` instead of the real one; --help,
    printed while parsing, still goes to the real stdout.
    """
    try:
        args = parser.parse_args(argv)
        with redirect_stdout(stdout):
            return action(args, create_client())
    except RegistryScriptError as exc:
        error = exc
    except Exception as exc:
        error = translate_error(exc, mlflow.get_tracking_uri())
        if type(error) is RegistryScriptError:  # not one we expect: keep the traceback
            logger.exception("unexpected failure")
    logger.error("%s (exit code %d)", error, error.exit_code)
    return error
