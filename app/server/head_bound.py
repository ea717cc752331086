"""Head bound: a request head past MAX_HEADER_BYTES is answered 431 at once.

Uvicorn's httptools protocol sets no bound on header size, and httptools joins the pieces
of a header as they arrive, so the cost of a huge header grows with its square (a large
enough one outlasts the worker timeout). Here the bytes received before the headers are
complete are counted.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from app.asgi_compat import HttpToolsProtocol
from app.errors import RequestHeadersTooLargeError, ServingError
from app.settings import Settings

logger = logging.getLogger(__name__)


@functools.cache
def max_header_bytes() -> int:
    """Read once per process, not per connection."""
    return Settings().max_header_bytes


class HeadersTooLargeError(Exception):
    """Raised inside the parser's callback to stop parsing a refused request."""


class BoundsRequestHead(HttpToolsProtocol):
    """Counts a request head's bytes; past the bound, answers 431 and closes, lingering."""

    if TYPE_CHECKING:  # from the protocol's other jobs (app.server.worker.ServingProtocol)

        def answer_without_app(
            self, error: ServingError, headers: list[tuple[bytes, bytes]]
        ) -> bytes: ...

        def close_lingering(self) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = max_header_bytes()
        self._in_headers = False
        self._header_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after the parser saw the chunk: each chunk is bounded (the event loop
        # reads at most 256 KiB), so the parser never holds more than limit + one chunk.
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self._limit:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        # A head that arrived in one chunk is measured here, in linear time (earlier
        # chunks of a longer head were all head, and counted in data_received).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if max(self._header_bytes, size) > self._limit:
            self._refuse()
            raise HeadersTooLargeError  # stops the parser; the app never sees the request
        super().on_headers_complete()

    def _refuse(self) -> None:
        logger.warning("request headers over %d bytes refused with 431", self._limit)
        error = RequestHeadersTooLargeError(
            f"the request headers are larger than {self._limit} bytes (MAX_HEADER_BYTES)"
        )
        headers = [*self.server_state.default_headers, (b"connection", b"close")]
        self.transport.write(self.answer_without_app(error, headers))
        self.close_lingering()
