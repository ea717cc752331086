"""The warm-up: a worker scores the model's logged input example before it reports ready."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.errors import ServingError
from app.observability.metrics import ServingMetrics
from app.readiness import Readiness
from app.runtime.model import ServedModel
from app.runtime.scoring import Scorer

logger = logging.getLogger(__name__)

# Warm predictions timed after the cold one: this many, unless they take longer than this.
_WARM_RUNS = 5
_WARM_UP_BUDGET_SECONDS = 1.0


async def warm_up(
    model: ServedModel,
    scorer: Scorer,
    readiness: Readiness,
    metrics: ServingMetrics,
    predict_timed: Callable[[float], None],
) -> None:
    """Score the request MLflow logged with the model's input example, the way a client's
    request is scored (parse, predict, encode); only then does this worker report ready.

    The quickest of a few warm runs (the first is often cold; neighbours on a busy machine
    slow some down) is handed to `predict_timed`: the admission bound's first size, which
    the worker's predicts for requests then revise.
    """
    if model.serving_input is None:
        logger.warning(
            "the model has no logged input example; ready without a warm-up, and the "
            "admission bound stays at its default until predicts for requests size it "
            "(or set MAX_CONCURRENT_REQUESTS)"
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
        predict_timed(min(warm))
    readiness.ready = True
    readiness.reason = "ready"
    metrics.ready.set(1)
    logger.info("worker ready")


async def _timed_warm_up(scorer: Scorer, body: bytes) -> float:
    started = time.perf_counter()
    await scorer.warm_up(body)
    return time.perf_counter() - started
