"""Lingering close: a connection whose request is still arriving is not reset.

Closing a connection whose request is still arriving resets it, and a client that writes
its whole request before reading (Python's urllib, with an early 413 or a 431) sees the
reset instead of the answer. So such a close lingers, as nginx's does: the rest is read and
dropped for a bounded time and size, then the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from app.asgi_compat import HttpToolsProtocol
from app.server.coalescing import CoalescingTransport

# After an answer while the request is still arriving: what is read and dropped at most.
LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 32 * 1024 * 1024


class LingersOnClose(HttpToolsProtocol):
    """The transport's close comes here (through the coalescing transport, the one wrapper
    every write passes), and waits while the request is still arriving."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lingering = False  # answered: what still arrives is dropped until closed
        self._dropped = 0
        self._lost = False

    def connection_made(self, transport: Any) -> None:
        self._raw_transport = transport
        wrapped = CoalescingTransport(transport, self.loop, self.close)
        super().connection_made(cast(asyncio.Transport, wrapped))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._dropped += len(data)
            if self._dropped > LINGER_MAX_BYTES:
                self._raw_transport.close()
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._lingering:  # the parser's error after a refusal: that was answered
            super().send_400_response(msg)

    def close_lingering(self) -> None:
        """Close after an answer given before the request was read: linger first."""
        self._lingering = True
        self.transport.close()

    def close(self, transport: asyncio.Transport) -> None:
        """Close now, unless the request is still arriving: then linger first."""
        arriving = self._lingering or (self.cycle is not None and self.cycle.more_body)
        if self._lost or not arriving:
            transport.close()
            return
        self._lingering = True
        transport.resume_reading()
        self.loop.call_later(LINGER_SECONDS, transport.close)
