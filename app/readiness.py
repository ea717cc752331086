"""Readiness, in one place: when a worker is ready, and when the pod is; and the signal
that closes the guardrail breakers, which take a worker out of readiness.

A worker is ready once it has scored the request MLflow logged with the model's input
example, the way a client's request is scored (app.runtime.warm_up); the pod (the ops
listener's /readyz) once every worker Gunicorn runs is, then while any is, until it shuts
down. The probes (app.http.probes, and app.server.ops_server for the pod) only report it.
A leaf module: the master reads it without importing the scoring stack.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# In PROMETHEUS_MULTIPROC_DIR, the one directory the master and every worker share: the ops
# listener writes it to reset the guardrail breakers, each worker watches it.
BREAKER_RESET_FILE = "guardrails-breaker-reset"


@dataclass
class Readiness:
    """Per worker: set after fork, once that worker's warm-up prediction has passed."""

    ready: bool = False
    reason: str = "warming up"


class PodReadiness:
    """The pod is ready once every worker has passed its warm-up, and stays ready while at
    least one has, until it shuts down.

    A worker that is replaced (a crash, or MAX_REQUESTS: under overload every shed request
    counts, so each worker is recycled within minutes) leaves the others serving while its
    successor warms up; dropping the whole pod for that second would move its traffic to
    pods that are as loaded as it is.
    """

    def __init__(self) -> None:
        self.has_been_ready = False

    def __call__(self, shutting_down: bool, ready_workers: int, workers: int) -> Readiness:
        if shutting_down:
            return Readiness(False, "shutting down")
        if ready_workers >= workers or (self.has_been_ready and ready_workers > 0):
            self.has_been_ready = True
            return Readiness(True, "ready")
        return Readiness(False, f"{ready_workers} of {workers} workers warmed up")


def breaker_reset_marker() -> Path | None:
    """The file an operator's reset touches; None outside the production command."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(directory) / BREAKER_RESET_FILE if directory else None


def request_breaker_reset() -> bool:
    """Ask every worker to close its guardrail breaker (they look within a second)."""
    marker = breaker_reset_marker()
    if marker is None:
        return False
    marker.write_text(f"{time.time()}\n")
    return True


def breaker_reset_stamp() -> int:
    """When the last reset was asked (0: never)."""
    marker = breaker_reset_marker()
    try:
        return marker.stat().st_mtime_ns if marker is not None else 0
    except FileNotFoundError:
        return 0
