"""Readiness, in one place: when a worker is ready, and when the pod is.

A worker is ready once it has scored the request MLflow logged with the model's input
example, the way a client's request is scored (app.runtime.warm_up); the pod (the ops
listener's /readyz) once every worker Gunicorn runs is, then while any is, until it shuts
down. The probes (app.http.probes, and app.server.ops_server for the pod) only report it.
A leaf module: the master reads it without importing the scoring stack.
"""

from __future__ import annotations

from dataclasses import dataclass


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
