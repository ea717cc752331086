"""Burst accept: a connection's arrival takes the connections queued behind it too.

Each connection uvloop accepts takes one per turn of the event loop (libuv#3696), and under
overload a turn takes tens of milliseconds, so new connections (a client reconnecting, the
load balancer's, MLflow's /ping) waited seconds in the listen queue, and past its length
were refused. Here the protocol of each accepted connection accepts what waits behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

from app.asgi_compat import HttpToolsProtocol, new_protocol_like

logger = logging.getLogger(__name__)

# The worker's listening sockets (set when it runs), and how many connections queued on
# each one connection's arrival takes with it.
_listeners: list[socket.socket] = []
ACCEPT_BURST = 256


def listen_on(sockets: Iterable[socket.socket]) -> None:
    """Keep non-blocking duplicates of the worker's listening sockets, to accept from."""
    _listeners[:] = [socket.socket(fileno=os.dup(listener.fileno())) for listener in sockets]
    for listener in _listeners:
        listener.setblocking(False)


class AcceptsQueuedConnections(HttpToolsProtocol):
    """On connecting, accepts the connections queued on the listeners (at most
    ACCEPT_BURST from each); the protocols it makes for them do not do it again."""

    def __init__(self, *args: Any, takes_queue: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._takes_queue = takes_queue

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self._takes_queue:
            self._accept_queued()

    def _accept_queued(self) -> None:
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

    def _queued_protocol(self) -> Any:
        return new_protocol_like(self, takes_queue=False)


def _report_failed_connection(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info("a queued connection was lost before it started: %s", task.exception())
