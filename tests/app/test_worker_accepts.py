"""A worker whose event loop is busy still takes every queued connection at once.

libuv, under uvloop, accepts one connection per turn of the loop; under overload a turn
takes tens of milliseconds. Here every turn of a real uvloop server with the production
worker's protocol takes 100 ms, and 200 clients connect together.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import uvloop

from app.server import accept_burst
from app.server.worker import ServingProtocol
from tests.support.uvicorn_thread import uvicorn_in_a_thread

CLIENTS = 200
TURN_SECONDS = 0.1
# Without taking the queue, 3 s of 100 ms turns accept about 30 of the 200.
DEADLINE_SECONDS = 3.0


class _LoopHog:
    """A plain ASGI app whose start-up makes every turn of the loop take TURN_SECONDS."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return
        await receive()
        loop = asyncio.get_running_loop()

        def hog() -> None:
            time.sleep(TURN_SECONDS)
            loop.call_soon(hog)

        loop.call_soon(hog)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})


@pytest.fixture
def busy_server() -> Iterator[tuple[uvicorn.Server, int]]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
    duplicate = socket.socket(fileno=os.dup(listener.fileno()))
    duplicate.setblocking(False)
    accept_burst._listeners[:] = [duplicate]  # as ServingWorker.run sets them
    config = uvicorn.Config(_LoopHog(), http=ServingProtocol, loop="uvloop", log_config=None)
    try:
        with uvicorn_in_a_thread(config, sockets=[listener]) as server:
            yield server, listener.getsockname()[1]
    finally:
        accept_burst._listeners.clear()
        duplicate.close()
        listener.close()


def test_a_busy_worker_accepts_every_queued_connection_at_once(
    busy_server: tuple[uvicorn.Server, int],
) -> None:
    server, port = busy_server
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(CLIENTS)]
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(server.server_state.connections) < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)
        accepted = len(server.server_state.connections)
    finally:
        for client in clients:
            client.close()
    assert accepted == CLIENTS, f"{accepted} of {CLIENTS} accepted within {DEADLINE_SECONDS} s"


@pytest.mark.parametrize("turn_seconds", [0.0, TURN_SECONDS])
def test_only_a_busy_loop_counts_as_busy(turn_seconds: float) -> None:
    """A worker takes the queue only while its turns are long: an idle one leaves queued
    connections to the next turn, and to the other workers on the same socket."""
    loop = uvloop.new_event_loop()
    lateness = accept_burst.LoopLateness()

    def hog() -> None:
        time.sleep(turn_seconds)
        loop.call_soon(hog)

    async def run_for(seconds: float) -> None:
        lateness.follow(asyncio.get_running_loop())
        if turn_seconds:
            loop.call_soon(hog)
        await asyncio.sleep(seconds)

    try:
        loop.run_until_complete(run_for(1.0))
    finally:
        loop.close()
    busy = lateness.seconds >= accept_burst.BUSY_TURN_SECONDS
    assert busy == bool(turn_seconds), f"late by {lateness.seconds:.3f} s"
