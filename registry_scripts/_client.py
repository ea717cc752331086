"""Build an MlflowClient that fails fast, and translate MLflow failures into our errors."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from registry_scripts._errors import (
    NotFoundError,
    RegistryScriptError,
    RegistryUnreachableError,
)

# MLflow's own defaults (7 retries, backoff factor 2, 120 s timeout) keep a CI job waiting
# for minutes on a registry that is down. These give up after about 3 s on a refused
# connection and 3 x 15 s on a silent one. A value the user set always wins.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    # Download progress bars are noise in CI logs.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def apply_http_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Bound MLflow's HTTP retries unless the user configured them."""
    for key, value in HTTP_DEFAULTS.items():
        environ.setdefault(key, value)


def create_client() -> MlflowClient:
    """A client for MLFLOW_TRACKING_URI (MLflow's default, sqlite:///mlflow.db, when unset)."""
    apply_http_defaults()
    return MlflowClient()


def is_connection_failure(exc: BaseException) -> bool:
    """True when a connection error, timeout or exhausted retry is anywhere in the chain.

    MLflow re-raises transport errors as a plain MlflowException, so the original is only
    reachable through __cause__/__context__.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            requests.ConnectionError
            | requests.Timeout
            | requests.exceptions.RetryError
            | OperationalError,
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def redact_uri(uri: str) -> str:
    """Drop user:password@ from a URI before it reaches a log line."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def translate_error(exc: Exception, tracking_uri: str) -> RegistryScriptError:
    """Map a failure from MLflow or its transport to the error (and exit code) to report."""
    message = exc.message if isinstance(exc, MlflowException) else f"{type(exc).__name__}: {exc}"
    if is_connection_failure(exc):
        return RegistryUnreachableError(
            f"registry at {redact_uri(tracking_uri)} is unreachable after bounded retries: "
            f"{message}"
        )
    if isinstance(exc, MlflowException):
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return NotFoundError(message)
        return RegistryScriptError(f"MLflow error ({exc.error_code}): {message}")
    return RegistryScriptError(f"unexpected error: {message}")
