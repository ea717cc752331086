"""A real Uvicorn server in a thread of the test process, for what needs a socket but not
Gunicorn (the production worker's protocol, say)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

START_SECONDS = 30.0


@contextmanager
def uvicorn_in_a_thread(
    config: uvicorn.Config, sockets: list[socket.socket] | None = None
) -> Iterator[uvicorn.Server]:
    """The started server (its lifespan done); it stops when the block ends."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=15)
