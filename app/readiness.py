"""Readiness, in one place: when a worker is ready, and when the pod is.

A worker is ready once it has scored the request MLflow logged with the model's input
example, the way a client's request is scored; the pod (the ops listener's /readyz) once
every worker Gunicorn runs is, then while any is, until it shuts down. The probes (app.probes, and
app.ops_server for the pod) only report it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.admission import AdmissionLimit
from app.errors import ServingError
from app.metrics import ServingMetrics
from app.model import ServedModel
from app.scoring import Scorer

logger = logging.getLogger(__name__)

# Warm predictions timed after the cold one: this many, unless they take longer than this.
_WARM_RUNS = 5
_WARM_UP_BUDGET_SECONDS = 1.0


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


async def warm_up(
    model: ServedModel,
    scorer: Scorer,
    readiness: Readiness,
    metrics: ServingMetrics,
    admission: AdmissionLimit,
) -> None:
    """Score the request MLflow logged with the model's input example, the way a client's
    request is scored (parse, predict, encode); only then does this worker report ready.

    The quickest of a few warm runs (the first is often cold; neighbours on a busy machine
    slow some down) sizes the admission bound.
    """
    if model.serving_input is None:
        logger.warning(
            "the model has no logged input example; ready without a warm-up, "
            "admission bound %d (set MAX_CONCURRENT_REQUESTS)",
            admission.bound,
        )
    else:
        body = model.serving_input.encode()
        try:
            spent = await _timed_warm_up(scorer, body)  # cold
            warm: list[float] = []
            while len(warm) < _WARM_RUNS and (not warm or spent < _WARM_UP_BUDGET_SECONDS):
                warm.append(await _timed_warm_up(scorer, body))
                spent += warm[-1]
        except ServingError as error:
            readiness.reason = "warm-up request failed; see the log"
            logger.error(
                "warm-up request failed (%s: %s); this worker stays not ready",
                error.error_code,
                error.message,
            )
            return
        except Exception:
            readiness.reason = "warm-up request failed; see the log"
            logger.exception("warm-up request failed; this worker stays not ready")
            return
        admission.size_from_predict(min(warm))
    readiness.ready = True
    readiness.reason = "ready"
    metrics.ready.set(1)
    logger.info("worker ready")


async def _timed_warm_up(scorer: Scorer, body: bytes) -> float:
    started = time.perf_counter()
    await scorer.warm_up(body)
    return time.perf_counter() - started
