"""Burst accept: on a busy worker, a connection's arrival takes the connections queued
behind it too.

Each connection uvloop accepts takes one per turn of the event loop (libuv#3696), and under
overload a turn takes tens of milliseconds, so new connections (a client reconnecting, the
load balancer's, MLflow's /ping) waited seconds in the listen queue, and past its length
were refused. Here the protocol of each accepted connection accepts what waits behind it,
while the worker's turns are long. Not while they are short: the workers share one
listening socket, and a worker taking the whole queue would take every connection of a
client pool that opens them together, leaving the other workers idle for as long as the
connections live. With short turns one accept per turn keeps up, and every idle worker
takes its share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Iterable
from typing import Any

from app.asgi_compat import HttpToolsProtocol, new_protocol_like

logger = logging.getLogger(__name__)

# The worker's listening sockets (set when it runs), and how many connections queued on
# each one connection's arrival takes with it.
_listeners: list[socket.socket] = []
ACCEPT_BURST = 256
# A turn of the loop this long is a busy worker's: one accept per turn would leave
# connections waiting. The loop's lateness is sampled this often.
BUSY_TURN_SECONDS = 0.02
LATENESS_SAMPLE_SECONDS = 0.05


class LoopLateness:
    """How late the worker's event loop runs a callback scheduled for a time: up to the
    length of the turn under way when it fell due (one timer per LATENESS_SAMPLE_SECONDS).
    Where in a turn a timer falls due varies, so the figure is the largest recent one, cut
    by a fifth at each sample that is not larger: a loop that had turns of 100 ms counts as
    idle again about 0.4 s after they end. Turns of 100 ms are always seen; shorter ones
    (down to BUSY_TURN_SECONDS) within a few samples, as the jittered timer falls due early
    in one of them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def follow(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start sampling `loop` (once; the worker's connections all run on it)."""
        if self._loop is not loop:
            self._loop = loop
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # Jittered, so the samples do not lock onto one phase of turns of a steady length.
        due = loop.time() + LATENESS_SAMPLE_SECONDS * random.uniform(0.5, 1.5)  # noqa: S311
        loop.call_at(due, self._sample, loop, due)

    def _sample(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self.seconds = max(loop.time() - due, self.seconds * 0.8)
        self._schedule(loop)


_lateness = LoopLateness()


def listen_on(sockets: Iterable[socket.socket]) -> None:
    """Keep non-blocking duplicates of the worker's listening sockets, to accept from."""
    _listeners[:] = [socket.socket(fileno=os.dup(listener.fileno())) for listener in sockets]
    for listener in _listeners:
        listener.setblocking(False)


class AcceptsQueuedConnections(HttpToolsProtocol):
    """On connecting to a busy worker, accepts the connections queued on the listeners (at
    most ACCEPT_BURST from each); the protocols it makes for them do not do it again."""

    def __init__(self, *args: Any, takes_queue: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._takes_queue = takes_queue

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        _lateness.follow(self.loop)
        if self._takes_queue and _lateness.seconds >= BUSY_TURN_SECONDS:
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
