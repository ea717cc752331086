"""A webhook receiver for Alertmanager on 127.0.0.1: when each alert first arrived firing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Arrival:
    alertname: str
    status: str  # "firing" or "resolved"
    at: float  # time.monotonic() when the notification arrived


@dataclass
class AlertLog:
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, payload: dict[str, object]) -> None:
        now = time.monotonic()
        alerts = payload.get("alerts", [])
        assert isinstance(alerts, list)
        with self.lock:
            for alert in alerts:
                self.arrivals.append(Arrival(alert["labels"]["alertname"], alert["status"], now))

    def first_firing(self, names: set[str], since: float) -> Arrival | None:
        """The first notification of one of `names` firing that arrived after `since`."""
        with self.lock:
            return next(
                (
                    arrival
                    for arrival in self.arrivals
                    if arrival.status == "firing"
                    and arrival.alertname in names
                    and arrival.at >= since
                ),
                None,
            )

    def firing_since(self, since: float) -> dict[str, float]:
        """Each alert name that arrived firing after `since`, with its first arrival."""
        first: dict[str, float] = {}
        with self.lock:
            for arrival in self.arrivals:
                if arrival.status == "firing" and arrival.at >= since:
                    first.setdefault(arrival.alertname, arrival.at)
        return first


@contextmanager
def running_receiver() -> Iterator[tuple[str, AlertLog]]:
    """The receiver's URL and the log it fills, for as long as the block runs."""
    log = AlertLog()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            log.record(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: the log above is what counts

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", log
    finally:
        server.shutdown()
        server.server_close()
