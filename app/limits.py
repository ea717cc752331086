"""Request limits: body size (compressed bodies included) and rows (admission: app.admission)."""

from __future__ import annotations

import zlib

from starlette.requests import Request

from app.errors import (
    BadRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

_GZIP_WINDOW = 16 + zlib.MAX_WBITS  # zlib's window bits for a gzip container


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it (or its decompressed form) passes max_bytes.

    A declared Content-Length above the limit is refused before anything is read; a
    chunked or lying body is counted as it streams. gzip bodies are inflated in bounded
    steps, so a small bomb cannot expand past the limit in memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Encoding '{encoding[:50]}'; use gzip or none"
        )
    inflater = zlib.decompressobj(_GZIP_WINDOW) if encoding == "gzip" else None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if inflater is not None:
            chunk = _inflate(inflater, chunk, max_bytes - size)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        parts.append(chunk)
    if inflater is not None and not inflater.eof:
        raise BadRequestError("the gzip body is truncated")
    return b"".join(parts)


def check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise RequestTooLargeError(
            f"the request holds {rows} rows; the limit is {max_rows} (MAX_REQUEST_ROWS)"
        )


def _inflate(inflater: zlib._Decompress, chunk: bytes, room: int) -> bytes:
    """At most one byte more than there is room for: enough to know the limit is passed."""
    try:
        return inflater.decompress(chunk, max(room, 0) + 1)
    except zlib.error:
        raise BadRequestError("the body is not valid gzip") from None


def _too_large(max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is larger than {max_bytes} bytes (MAX_BODY_BYTES)"
    )
