"""HTTP clients for tests that send from many threads at once.

httpx's sync connection pool can close a connection it has already handed to another
thread's request (encode/httpcore#1110): that request then fails with `EBADF` or hangs
until its timeout, a fault of the client and not of the server under test. So threads
never share a pool here: each thread gets its own client.
"""

from __future__ import annotations

import ssl
import threading
from types import TracebackType
from typing import Any

import httpx


class ClientPerThread:
    """One `httpx.Client` per calling thread, all closed together on exit.

    `fresh_connections=True` opens a new connection for every request (no keep-alive),
    so Gunicorn's workers share the requests as they accept them.
    """

    def __init__(self, *, fresh_connections: bool = False, timeout: float = 30) -> None:
        keepalive = 0 if fresh_connections else 1
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=keepalive)
        self._timeout = timeout
        # Building a client builds its TLS context, about 20 ms: made once, not per thread.
        self._tls = ssl.create_default_context()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._client().post(url, **kwargs)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(limits=self._limits, timeout=self._timeout, verify=self._tls)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def __enter__(self) -> ClientPerThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
