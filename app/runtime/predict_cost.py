"""What a request costs this worker's predict calls, measured while it serves.

Each served-model predict call is timed where it ran (the predict thread, or the event
loop for an inline one) and reported here, on the event loop, with the number of requests
that shared that time: the requests one micro-batched call answered, or the predicts
running side by side in the thread pool for requests that are not batched. Every
`WINDOW` calls, the median cost per request of those calls is handed on (the admission
bound follows it, app.http.admission); one slow call among them, a pause or a neighbour's
burst, does not move the median. A call is a list append; a median every `WINDOW` calls
sorts that many numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

# Predict calls summarised by one estimate.
WINDOW = 16


class PredictCost:
    """Seconds of predict per request, as the median of the last `window` calls."""

    def __init__(self, on_estimate: Callable[[float], None], window: int = WINDOW) -> None:
        self._on_estimate = on_estimate
        self._window = window
        self._costs: list[float] = []

    def record(self, seconds: float, shared_by: int) -> None:
        """One predict call that took `seconds` for `shared_by` requests. Call it on the
        event loop only: the estimate it may hand on is not guarded against threads."""
        if shared_by < 1 or not math.isfinite(seconds):
            return  # a call that failed as a whole has no meaningful time
        costs = self._costs
        costs.append(seconds / shared_by)
        if len(costs) >= self._window:
            estimate = statistics.median(costs)
            costs.clear()
            self._on_estimate(estimate)
