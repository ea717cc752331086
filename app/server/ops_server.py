"""The ops listener: probes and /metrics on a port of their own (OPS_PORT), in Gunicorn's master.

Workers run the scoring event loops, and under overload everything they answer waits in
their queues. The master scores nothing, so a thread in it answers the kubelet and
Prometheus at once whatever the load. It answers for the pod:

- `/livez`, `/ping`, `/health`: the master is up and supervising (Gunicorn itself replaces
  a worker whose event loop stops beating within TIMEOUT_SECONDS);
- `/readyz`: what the `ready` callback says (every worker warmed up, not shutting down);
- `/metrics`: every worker's samples, merged from PROMETHEUS_MULTIPROC_DIR;
- `POST /guardrails/breaker/reset`: an operator closes every worker's guardrail breaker
  (docs/guardrails.md); the only POST, on the port only operators reach.

Forking with this thread running is safe: the thread holds a lock while it computes an
answer, fork takes that lock first, and a forked worker closes the listener's sockets.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.errors import EndpointNotFoundError, NotReadyError, ServingError
from app.observability.metrics import EXPOSITION_CONTENT_TYPE
from app.paths import BREAKER_RESET_PATH, METRICS_PATH
from app.readiness import Readiness, request_breaker_reset

logger = logging.getLogger(__name__)

JSON = "application/json"
# What the thread may be doing at a fork; held only while an answer is computed.
_FORK_LOCK = threading.Lock()
_listeners: list[OpsServer] = []

Answer = tuple[int, str, bytes, dict[str, str]]


def _error(error: ServingError) -> Answer:
    return error.status_code, JSON, error.body, error.headers


class OpsServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ready: Callable[[], Readiness],
        render_metrics: Callable[[], bytes],
    ) -> None:
        super().__init__((host, port), _Handler)  # binds: a taken port fails here, loudly
        self.ready = ready
        self.render_metrics = render_metrics
        self.connections: set[socket.socket] = set()

    def start(self) -> None:
        _register_fork_handlers()
        _listeners.append(self)
        threading.Thread(target=self.serve_forever, name="ops-listener", daemon=True).start()
        logger.info("ops listener (probes, /metrics) on %s:%d", *self.server_address[:2])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, path: str) -> Answer:
        if path == "/livez":
            return 200, JSON, b'{"status":"alive"}', {}
        if path in ("/ping", "/health"):
            return 200, JSON, b"\n", {}  # MLflow's answer
        if path == "/readyz":
            readiness = self.ready()
            if readiness.ready:
                return 200, JSON, b'{"status":"ready"}', {}
            logger.info("pod not ready: %s", readiness.reason)
            return _error(NotReadyError(f"not ready: {readiness.reason}"))
        if path == METRICS_PATH:
            return 200, EXPOSITION_CONTENT_TYPE, self.render_metrics(), {}
        return _error(EndpointNotFoundError("no such ops endpoint"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for Prometheus; every answer has a length
    timeout = 10  # a client that stalls mid-request holds only its own thread, this long
    server: OpsServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        self._send(path, self.server.answer)

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 4096))
        self._send(path, _answer_post)

    def _send(self, path: str, answer: Callable[[str], Answer]) -> None:
        try:
            with _FORK_LOCK:
                status, content_type, body, headers = answer(path)
        except Exception:
            logger.exception("the ops listener failed on %s", path)
            failed = ServingError("internal server error; see the server log")
            status, content_type, body, headers = _error(failed)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes every few seconds are noise; failures are logged where they happen."""


def _answer_post(path: str) -> Answer:
    if path != BREAKER_RESET_PATH:
        return _error(EndpointNotFoundError("no such ops endpoint"))
    if not request_breaker_reset():
        return _error(ServingError("no directory shared with the workers to signal them"))
    logger.warning("guardrail breakers reset by an operator")
    return 200, JSON, b'{"reset":true}', {}


def _register_fork_handlers() -> None:
    if not _listeners:  # once per process
        os.register_at_fork(
            before=_FORK_LOCK.acquire,
            after_in_parent=_FORK_LOCK.release,
            after_in_child=_close_in_child,
        )


def _close_in_child() -> None:
    """A worker has no ops thread: close its copies of the listener's sockets."""
    _FORK_LOCK.release()
    for listener in _listeners:
        for connection in list(listener.connections):
            connection.close()
        listener.socket.close()
    _listeners.clear()
