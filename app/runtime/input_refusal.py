"""Whether an exception from predict is the model refusing its input, and in which words.

MLflow raises its enforcement errors with the codes of our client errors; those are the
caller's fault and answered as such, in words that never quote the input. Anything else a
model raises is its own failure, except for a model with no signature, whose input could
not be checked first. The server (app.runtime.scoring) and the batch command
(batch_scoring) decide it here, so a row is refused by both or by neither.
"""

from __future__ import annotations

import logging

from mlflow.exceptions import MlflowException

from app.errors import BadRequestError, SchemaMismatchError, ServingError

logger = logging.getLogger(__name__)

# MLflow's error codes for input it refuses are ours too: the same classes answer them.
_CLIENT_ERRORS = {error.error_code: error for error in (SchemaMismatchError, BadRequestError)}
# MLflow's enforcement messages quote the input they refuse: those get words of ours. A
# model's own MlflowException (the demo's threshold check) keeps its message.
_QUOTING_PREFIXES = {
    "Failed to enforce schema": "the input does not match the model's signature",
    "Failed to validate data against type hint": "the input does not match the model's type hints",
    "Failed to convert": "the input does not match the model's signature",
    "Incompatible": "the input does not match the model's signature",
    "Invalid parameters": "the params do not match the model's params schema",
    "Failed to validate": "the input does not match the model's signature",
}
_UNCHECKED_INPUT_FAILED = (
    "the model could not score this input; it has no signature to check requests against, "
    "so send the columns and types it was trained on"
)


def input_refusal(error: Exception, *, unchecked: bool) -> ServingError | None:
    """The client error to answer when `error` refuses the input; None for a model failure.

    `unchecked`: the model has no signature, so whatever it raises is blamed on the input.
    """
    if isinstance(error, MlflowException):
        client_error = _CLIENT_ERRORS.get(error.error_code)
        if client_error is None:
            return None
        logger.info("MLflow refused the input: %s", error.error_code)
        return client_error(_refusal(error.message))
    if unchecked:
        logger.info("the model raised %s on unchecked input", type(error).__name__)
        return BadRequestError(_UNCHECKED_INPUT_FAILED)
    return None


def _refusal(message: str) -> str:
    for prefix, words in _QUOTING_PREFIXES.items():
        if message.startswith(prefix):
            return f"{words} (see GET /version)"
    return message.splitlines()[0] if message else "the model refused this input"
