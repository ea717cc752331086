"""The Gunicorn worker of the production command: Uvicorn's, with the request head bounded
and a lingering close; and its watch on the master.

Uvicorn's httptools protocol sets no bound on header size, and httptools joins the pieces
of a header as they arrive, so the cost of a huge header grows with its square (a large
enough one outlasts the worker timeout). Here the bytes received before the headers are
complete are counted; past MAX_HEADER_BYTES the client gets 431 at once.

Closing a connection whose request is still arriving resets it, and a client that writes
its whole request before reading (Python's urllib, with an early 413 or this 431) sees the
reset instead of the answer. So such a close lingers, as nginx's does: the rest is read and
dropped for a bounded time and size, then the connection is closed.

Each connection uvloop accepts takes the connections queued behind it as well: libuv
accepts one per turn of the event loop (libuv#3696), and under overload a turn takes tens
of milliseconds, so new connections (a client reconnecting, the load balancer's, MLflow's
/ping) waited seconds in the listen queue, and past its length were refused.

A scoring request past the worker's admission bound is refused as soon as its head is
parsed (app.http.admission.EarlyShed): the protocol writes its 503 there and then, with no ASGI
app or task, and it does not count toward MAX_REQUESTS.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
from typing import Any, ClassVar, cast

from starlette.types import Scope
from uvicorn_worker import UvicornWorker

from app.asgi_compat import (
    HttpToolsProtocol,
    RequestResponseCycle,
    new_protocol_like,
    uncount_request,
    worker_config,
)
from app.errors import RequestHeadersTooLargeError, http_error_response
from app.http.admission import EarlyShed, early_shed_of
from app.paths import UNMATCHED_ROUTE
from app.settings import Settings

logger = logging.getLogger(__name__)

# The worker's listening sockets (set when it runs), and how many connections queued on
# each one connection's arrival takes with it (BoundedHeadersProtocol._accept_queued).
_listeners: list[socket.socket] = []
ACCEPT_BURST = 256

# After an answer while the request is still arriving: what is read and dropped at most.
LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 32 * 1024 * 1024


@functools.cache
def max_header_bytes() -> int:
    """Read once per process, not per connection."""
    return Settings().max_header_bytes


class HeadersTooLargeError(Exception):
    """Raised inside the parser's callback to stop parsing a refused request."""


class BoundedHeadersProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol: 431 past MAX_HEADER_BYTES, and a lingering close."""

    def __init__(self, *args: Any, takes_queue: bool = True, **kwargs: Any) -> None:
        """`takes_queue`: on connecting, accept the connections queued behind this one."""
        super().__init__(*args, **kwargs)
        self._takes_queue = takes_queue
        self._limit = max_header_bytes()
        self._in_headers = False
        self._header_bytes = 0
        self._lingering = False  # answered: what still arrives is dropped until closed
        self._dropped = 0
        self._lost = False
        self._early_shed = early_shed_of(self.config.app)

    def connection_made(self, transport: Any) -> None:
        self._raw_transport = transport
        super().connection_made(cast(asyncio.Transport, _LingeringTransport(transport, self)))
        if self._takes_queue:
            self._accept_queued()

    def _accept_queued(self) -> None:
        """Accept what waits in the listen queues now (at most ACCEPT_BURST from each)."""
        for listener in _listeners:
            for _ in range(ACCEPT_BURST):
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as error:  # out of file descriptors, say
                    logger.warning("accepting a queued connection failed: %s", error)
                    break
                connection.setblocking(False)
                task = self.loop.create_task(
                    self.loop.connect_accepted_socket(self._queued_protocol, connection)
                )
                task.add_done_callback(_report_failed_connection)

    def _queued_protocol(self) -> BoundedHeadersProtocol:
        protocol: BoundedHeadersProtocol = new_protocol_like(self, takes_queue=False)
        return protocol

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
        shed = self._early_shed
        if shed is None:
            super().on_headers_complete()
            return
        state, previous = self.scope["state"], self.cycle
        if (
            previous is None or previous.response_complete  # none pipelined ahead
        ) and shed.refuses(self.parser.get_method(), self.url, state):
            self._answer_refusal(shed)
            return
        super().on_headers_complete()
        if self.cycle is previous:  # no request cycle: the connection upgrades
            shed.release_unserved(state)

    def _answer_refusal(self, shed: EarlyShed) -> None:
        """Write the 503 from the parser's callback: no cycle, task or app. Whatever of the
        request's body still arrives is dropped (the placeholder cycle is answered)."""
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
        self.cycle = cast(RequestResponseCycle, _Refused())
        headers = self.server_state.default_headers
        if not keep_alive:
            headers = [*headers, (b"connection", b"close")]
        self.transport.write(shed.answer(cast(Scope, self.scope), headers))
        if not keep_alive:
            self.transport.close()
            return
        # Uvicorn's bookkeeping for an answered request (reading resumed, keep-alive timer),
        # without counting it toward MAX_REQUESTS: a refusal leaves nothing behind to
        # recycle, and under overload the refusals would recycle every worker within
        # seconds, each time resetting its connections and warming up a successor.
        self.on_response_complete()
        uncount_request(self.server_state)

    def send_400_response(self, msg: str) -> None:
        if not self._lingering:  # the parser's error after a refusal: 431 was answered
            super().send_400_response(msg)

    def _refuse(self) -> None:
        logger.warning("request headers over %d bytes refused with 431", self._limit)
        error = RequestHeadersTooLargeError(
            f"the request headers are larger than {self._limit} bytes (MAX_HEADER_BYTES)"
        )
        headers = [*self.server_state.default_headers, (b"connection", b"close")]
        if self._early_shed is None:
            self.transport.write(http_error_response(error, headers))
        else:  # counted and logged as the app's answers are, with no route: the head is cut
            scope = cast(Scope, self.scope)
            scope["method"] = self.parser.get_method().decode("ascii", "replace")
            scope["state"]["route_template"] = UNMATCHED_ROUTE
            self.transport.write(self._early_shed.refused(scope, error, headers))
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


def _report_failed_connection(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info("a queued connection was lost before it started: %s", task.exception())


class _Refused:
    """The cycle of a request refused by the protocol: answered, so Uvicorn's parser
    callbacks drop its body; a close lingers while the body may still be arriving."""

    response_complete = True
    more_body = True
    # Uvicorn wakes a cycle's body reader when its connection is lost; this cycle has none.
    message_event = asyncio.Event()


class _LingeringTransport:
    """The connection's transport: its close() deferred to the protocol's lingering close,
    and a response's head sent together with the body that follows it.

    Uvicorn writes a response's head and its body in two calls, two send system calls and
    two TCP segments; for a small answer (any 503, most predictions) that second call is a
    tenth of the worker's time. The head waits for the next write, or at the latest for
    the event loop's next turn, so nothing is held back and the order never changes.
    """

    def __init__(self, transport: asyncio.Transport, protocol: BoundedHeadersProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closing = False
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
            self._transport.write(data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._protocol.loop.call_soon(self._flush)
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
            self._protocol.close(self._transport)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ServingWorker(UvicornWorker):  # type: ignore[misc]
    """What `worker_class` names in app.gunicorn_conf."""

    def run(self) -> None:
        # Non-blocking duplicates of Gunicorn's listening sockets, for _accept_queued.
        _listeners[:] = [
            socket.socket(fileno=os.dup(listener.fileno())) for listener in self.sockets
        ]
        for listener in _listeners:
            listener.setblocking(False)
        super().run()

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = worker_config(http=BoundedHeadersProtocol)


async def exit_when_orphaned(every_seconds: float = 1.0) -> None:
    """Stop this worker gracefully if its master dies.

    Gunicorn's own workers check for a changed parent; the Uvicorn worker does not, so a
    master killed with SIGKILL would leave workers serving on the shared socket forever.
    """
    parent = os.getppid()
    while True:
        await asyncio.sleep(every_seconds)
        if os.getppid() != parent:
            logger.error("the master process %d is gone; this worker stops", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return
