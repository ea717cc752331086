"""One error hierarchy that carries its HTTP status and error code, one body per protocol.

Bodies are `{"error_code": "...", "message": "..."}` as MLflow's scoring server sends them;
on the Open Inference Protocol's paths (/v2/...), `{"error": "..."}` as V2 servers send them
(app.paths.is_v2_path decides), with the same status and message.
Messages name the problem (field, column, type, limit) but never echo request values; 5xx
messages are generic and the detail goes to the log. Every answer with an error, from any
layer (the scoring route, admission, authentication, the router, the probes, the ops
listener, the worker's header bound), is made from one of these classes, and the OpenAPI
document lists the scoring route's from them (app.http.openapi): a status or code lives here only.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

from app.paths import is_v2_path

MAX_MESSAGE_CHARS = 500


class ServingError(Exception):
    """The server failed; the log has the detail.

    Base of every error the API reports; subclasses fix the status and error code, and
    their first docstring line is what the OpenAPI document says of them.
    `rejected_reason` labels requests refused by a limit (http_requests_rejected_total).
    `answers_scoring`: whether POST /invocations can answer it (documented there).
    """

    status_code = 500
    error_code = "INTERNAL_ERROR"
    rejected_reason: str | None = None
    answers_scoring = True
    # Set on errors worth retrying soon: sent as Retry-After.
    retry_after_seconds: int | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message[:MAX_MESSAGE_CHARS]
        self.headers = dict(headers or {})
        if self.retry_after_seconds is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after_seconds))

    @property
    def body(self) -> bytes:
        return error_body(self.error_code, self.message)

    def body_for(self, path: str) -> bytes:
        """The body in the protocol of the path it answers."""
        return v2_error_body(self.message) if is_v2_path(path) else self.body


class BadRequestError(ServingError):
    """The body is not a scoring request of MLflow's protocol."""

    status_code = 400
    error_code = "BAD_REQUEST"


class MalformedRequestError(BadRequestError):
    """The body cannot be decoded: not JSON, CSV or Parquet in an encoding MLflow reads
    (BAD_REQUEST, as MLflow)."""


class UnauthenticatedError(ServingError):
    """No valid API key, when keys are configured."""

    status_code = 401
    error_code = "UNAUTHENTICATED"


class EndpointNotFoundError(ServingError):
    """No such endpoint."""

    status_code = 404
    error_code = "ENDPOINT_NOT_FOUND"
    answers_scoring = False


class ModelNotFoundError(ServingError):
    """No model of that name (or version) is served here (Open Inference Protocol paths)."""

    status_code = 404
    error_code = "MODEL_NOT_FOUND"
    answers_scoring = False


class MethodNotAllowedError(ServingError):
    """The endpoint does not take this method (BAD_REQUEST, as MLflow)."""

    status_code = 405
    error_code = "BAD_REQUEST"
    answers_scoring = False


class RequestTooLargeError(ServingError):
    """The body, or the table it holds, is above a configured limit."""

    status_code = 413
    error_code = "RESOURCE_LIMIT_EXCEEDED"
    rejected_reason = "too_large"


class UnsupportedMediaTypeError(ServingError):
    """The Content-Type or Content-Encoding is not one the protocol takes."""

    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class SchemaMismatchError(ServingError):
    """The data or params do not fit the model's signature."""

    status_code = 422
    error_code = "INVALID_PARAMETER_VALUE"


class GuardrailViolationError(ServingError):
    """The input, or the model's answer to it, breaks a business rule this model version
    enforces (docs/guardrails.md); the message names the rule, the column and the rows."""

    status_code = 422
    error_code = "GUARDRAIL_VIOLATION"


class RequestHeadersTooLargeError(RequestTooLargeError):
    """The request's headers are above MAX_HEADER_BYTES (answered by the worker itself)."""

    status_code = 431


class PredictionFailedError(ServingError):
    """The model failed on input that passed validation; the log has the detail."""


class OverloadedError(ServingError):
    """This worker holds its maximum of scoring requests: retry after the Retry-After."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    rejected_reason = "shed"
    retry_after_seconds = 1


class GuardrailBreakerOpenError(ServingError):
    """Scoring is paused: too many recent requests broke a critical business rule."""

    status_code = 503
    error_code = "GUARDRAIL_BREAKER_OPEN"
    retry_after_seconds = 5


class NotReadyError(ServingError):
    """Not ready: the warm-up has not passed, or the server is shutting down."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    answers_scoring = False
    retry_after_seconds = 1


class DeadlineExceededError(ServingError):
    """No answer within REQUEST_TIMEOUT_SECONDS; the request was abandoned."""

    status_code = 504
    error_code = "DEADLINE_EXCEEDED"
    rejected_reason = "timeout"


class ModelLoadError(Exception):
    """The model named by MODEL_URI cannot be resolved or loaded; the server must not start."""


def error_classes() -> list[type[ServingError]]:
    """Every error the API can answer with, ServingError itself included."""
    found: list[type[ServingError]] = [ServingError]
    for error_class in found:
        found.extend(error_class.__subclasses__())
    return found


# Starlette's own HTTP errors (unknown path, wrong method) in the same body shape.
_BY_HTTP_STATUS: dict[int, type[ServingError]] = {
    404: EndpointNotFoundError,
    405: MethodNotAllowedError,
}


def error_body(error_code: str, message: str) -> bytes:
    return orjson.dumps({"error_code": error_code, "message": message})


def v2_error_body(message: str) -> bytes:
    """The Open Inference Protocol's error body."""
    return orjson.dumps({"error": message})


# What error_body writes, for the OpenAPI document (app.http.openapi).
ERROR_BODY_SCHEMA = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "example": "INVALID_PARAMETER_VALUE"},
        "message": {"type": "string", "example": "column 'age' expects long (whole numbers)"},
    },
}


# What v2_error_body writes, for the OpenAPI document.
V2_ERROR_BODY_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "example": "missing required column(s): 'age'"}},
}


def error_response(error: ServingError, path: str = "") -> Response:
    return Response(
        error.body_for(path),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers,
    )


async def send_json(
    send: Send, status_code: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON answer from plain ASGI code (outside Starlette's responses)."""
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [*_body_headers(body), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_error(scope: Scope, send: Send, error: ServingError) -> None:
    """The error's answer from plain ASGI code, noted in the request's state for the
    request-context middleware to count and log (app.http.middleware)."""
    note_error(scope.setdefault("state", {}), error)
    body = error.body_for(scope.get("path", ""))
    await send_json(send, error.status_code, body, _header_pairs(error))


def http_error_response(
    error: ServingError, headers: list[tuple[bytes, bytes]], path: str = ""
) -> bytes:
    """The whole HTTP/1.1 answer, for an error the worker writes itself before any ASGI app
    runs (app.server.early_refusal): the body and headers answer_error sends, then `headers`."""
    body = error.body_for(path)
    reason = HTTPStatus(error.status_code).phrase.encode()
    lines = [b"HTTP/1.1 %d %s" % (error.status_code, reason)]
    lines += [b"%s: %s" % pair for pair in _body_headers(body)]
    lines += [b"%s: %s" % pair for pair in (*_header_pairs(error), *headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _body_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]


def _header_pairs(error: ServingError) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in error.headers.items()
    ]


async def handle_http_exception(request: Request, exception: Exception) -> Response:
    """Starlette's own 404/405 answered in the same body shape as everything else."""
    assert isinstance(exception, HTTPException)
    error_class = _BY_HTTP_STATUS.get(exception.status_code, BadRequestError)
    error = error_class(str(exception.detail), headers=dict(exception.headers or {}))
    response = refusal(request, error)
    response.status_code = exception.status_code
    return response


def refusal(request: Request, error: ServingError) -> Response:
    """A route's error answer, noted for the request-context middleware to count and log."""
    note_error(request.scope.setdefault("state", {}), error)
    return error_response(error, request.url.path)


def note_error(state: dict[str, object], error: ServingError) -> None:
    """What the request-context middleware counts and logs of an error answer."""
    state["error_code"] = error.error_code
    if error.rejected_reason:
        state["rejected_reason"] = error.rejected_reason
