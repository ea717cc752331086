"""One error hierarchy that carries its HTTP status, one handler, one MLflow-shaped body.

Bodies are `{"error_code": "...", "message": "..."}` as MLflow's scoring server sends them.
Messages name the problem (field, column, type, limit) but never echo request values; 5xx
messages are generic and the detail goes to the log.
"""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

MAX_MESSAGE_CHARS = 500


class ServingError(Exception):
    """Base of every error the API reports; subclasses fix the status and error code.

    `rejected_reason` labels requests refused by a limit (http_requests_rejected_total).
    """

    status_code = 500
    error_code = "INTERNAL_ERROR"
    rejected_reason: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message[:MAX_MESSAGE_CHARS]
        self.headers = headers or {}


class BadRequestError(ServingError):
    """The body is not a scoring request of MLflow's protocol."""

    status_code = 400
    error_code = "BAD_REQUEST"


class MalformedRequestError(BadRequestError):
    """The body cannot be decoded: not JSON, CSV, Parquet or UTF-8 (BAD_REQUEST, as MLflow)."""


class SchemaMismatchError(ServingError):
    """A well-formed request whose data or params do not fit the model's signature."""

    status_code = 422
    error_code = "INVALID_PARAMETER_VALUE"


class UnsupportedMediaTypeError(ServingError):
    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class PredictionFailedError(ServingError):
    """The model raised on input that passed validation: a server-side fault."""

    status_code = 500
    error_code = "INTERNAL_ERROR"


class ModelLoadError(Exception):
    """The model named by MODEL_URI cannot be resolved or loaded; the server must not start."""


_CODE_BY_HTTP_STATUS = {
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
}


def error_body(error_code: str, message: str) -> bytes:
    return orjson.dumps({"error_code": error_code, "message": message})


def error_response(
    status_code: int, error_code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(error_code, message),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def send_json(
    send: Send, status_code: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON answer from plain ASGI code (outside Starlette's responses)."""
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_error(scope: Scope, send: Send, error: ServingError) -> None:
    """The error's answer from plain ASGI code, noted in the request's state for the
    request-context middleware to count and log (app.middleware)."""
    state = scope.setdefault("state", {})
    state["error_code"] = error.error_code
    if error.rejected_reason:
        state["rejected_reason"] = error.rejected_reason
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in error.headers.items()
    ]
    await send_json(send, error.status_code, error_body(error.error_code, error.message), headers)


async def handle_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's own 404/405 answered in the same body shape as everything else."""
    assert isinstance(error, HTTPException)
    code = _CODE_BY_HTTP_STATUS.get(error.status_code, "BAD_REQUEST")
    request.state.error_code = code
    return error_response(error.status_code, code, str(error.detail), dict(error.headers or {}))


class RequestTooLargeError(ServingError):
    """The body or its row count is above a configured limit."""

    status_code = 413
    error_code = "RESOURCE_LIMIT_EXCEEDED"
    rejected_reason = "too_large"


class OverloadedError(ServingError):
    """This worker already holds its maximum of scoring requests: retry shortly."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    rejected_reason = "shed"


class DeadlineExceededError(ServingError):
    status_code = 504
    error_code = "DEADLINE_EXCEEDED"
    rejected_reason = "timeout"


class UnauthenticatedError(ServingError):
    status_code = 401
    error_code = "UNAUTHENTICATED"
