"""Build an MlflowClient that fails fast, and translate MLflow failures into our errors.

Messages may carry the registry address with its credentials: the runner (_cli) redacts
every output, so nothing here needs to.
"""

from __future__ import annotations

import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from model_fetch.retries import apply_http_defaults
from registry_scripts._errors import (
    NotFoundError,
    RegistryScriptError,
    RegistryUnreachableError,
)


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


def translate_error(exc: Exception, tracking_uri: str) -> RegistryScriptError:
    """Map a failure from MLflow or its transport to the error (and exit code) to report."""
    message = exc.message if isinstance(exc, MlflowException) else f"{type(exc).__name__}: {exc}"
    if is_connection_failure(exc):
        return RegistryUnreachableError(
            f"registry at {tracking_uri} is unreachable after bounded retries: {message}"
        )
    if isinstance(exc, MlflowException):
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return NotFoundError(message)
        return RegistryScriptError(f"MLflow error ({exc.error_code}): {message}")
    return RegistryScriptError(f"unexpected error: {message}")
