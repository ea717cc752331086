"""The errors the registry commands raise, each carrying its process exit code.

Exit codes (documented in docs/pipeline.md):
0 success, 1 unexpected error, 2 usage error, 3 quality gate failed,
4 registry unreachable, 5 not found, 6 registry state conflicts with the request.
"""

from __future__ import annotations

from typing import Any


class RegistryScriptError(Exception):
    """Base error: the message is printed for humans, `details` go into the JSON result."""

    exit_code = 1

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class UsageError(RegistryScriptError):
    """The command line cannot be acted on (bad flag, malformed URI)."""

    exit_code = 2


class GateFailedError(RegistryScriptError):
    """A candidate version did not pass the quality gate."""

    exit_code = 3


class RegistryUnreachableError(RegistryScriptError):
    """The tracking/registry server did not answer within the bounded retries."""

    exit_code = 4


class NotFoundError(RegistryScriptError):
    """A registered model, version or alias does not exist."""

    exit_code = 5


class ConflictError(RegistryScriptError):
    """The registry is in a state the request does not allow (e.g. an unexpected version)."""

    exit_code = 6
