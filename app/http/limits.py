"""Request limits: body size, every gzip member counted inflated (rows, columns and cells:
app.protocol.budget; admission: app.http.admission)."""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from app.errors import (
    BadRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

_GZIP_WINDOW = 16 + zlib.MAX_WBITS  # zlib's window bits for a gzip container


async def read_body(headers: Headers, receive: Receive, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it (or its decompressed form) passes max_bytes.

    A declared Content-Length above the limit is refused before anything is read; a
    chunked or lying body is counted as it streams. gzip bodies are inflated in bounded
    steps, so a small bomb cannot expand past the limit in memory.
    """
    declared = headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise _too_large(max_bytes)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaTypeError("unsupported Content-Encoding; use gzip or none")
    inflater = GzipInflater() if encoding == "gzip" else None
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if inflater is not None:
            chunk = inflater.inflate(chunk, max_bytes - size)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        parts.append(chunk)
    if inflater is not None and not inflater.eof:
        raise BadRequestError("the gzip body is truncated")
    return parts[0] if len(parts) == 1 else b"".join(parts)


class GzipInflater:
    """Inflates a gzip body of one or more members (concatenated streams, which gzip -d and
    curl read as one), in bounded steps: a member after the first is never ignored."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(_GZIP_WINDOW)

    @property
    def eof(self) -> bool:
        return self._member.eof

    def inflate(self, chunk: bytes, room: int) -> bytes:
        """At most one byte more than there is room for: enough to know the limit is passed."""
        pieces = []
        while True:
            try:
                piece = self._member.decompress(chunk, max(room, 0) + 1)
            except zlib.error:
                raise BadRequestError("the body is not valid gzip") from None
            pieces.append(piece)
            room -= len(piece)
            if room < 0 or not (self._member.eof and self._member.unused_data):
                return b"".join(pieces)
            chunk = self._member.unused_data  # the next member starts here
            self._member = zlib.decompressobj(_GZIP_WINDOW)


def _too_large(max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is larger than {max_bytes} bytes (MAX_BODY_BYTES)"
    )
