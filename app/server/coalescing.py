"""Write coalescing: a response's head goes out with the body that follows it.

Uvicorn writes a response's head and its body in two calls, two send system calls and two
TCP segments; for a small answer (any 503, most predictions) that second call is a tenth of
the worker's time. The head waits for the next write, or at the latest for the event loop's
next turn, so nothing is held back and the order never changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class CoalescingTransport:
    """The connection's transport as the protocol sees it. Its close() flushes a held head,
    then hands the close, once, to `close` (app.server.lingering decides when)."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        close: Callable[[asyncio.Transport], None],
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._close = close
        self._closing = False
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
            self._transport.write(data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            data, self._head = self._head, None
            self._transport.write(data)

    def close(self) -> None:
        if not self._closing:
            self._flush()
            self._closing = True
            self._close(self._transport)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
