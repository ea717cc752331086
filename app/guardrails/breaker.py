"""The breaker: stop scoring while too many recent requests break a rule that matters.

Requests are counted in one-second buckets over the last `window_seconds`; once at least
`min_requests` were seen and the share that broke a rule of the configured severity is
above `max_violation_share`, it opens. Open, it refuses scoring for `open_seconds` (by
default the window), then closes with an empty window: requests are scored and counted
again, and it opens again if the share is still too high. Refused requests are not scored,
so they cannot be counted; the cool-down is how the breaker learns that the share fell.
State is per process (each Gunicorn worker has its own), shared by its event loop (which
asks whether it is open) and its predict thread (which records requests): a lock keeps
the counts whole.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from app.guardrails.rules import BreakerConfig


class Breaker:
    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._open_seconds = config.open_seconds or config.window_seconds
        # [second, requests, requests breaking a rule of the severity], oldest first.
        self._buckets: deque[list[int]] = deque()
        self._requests = 0
        self._violating = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def record(self, violated: bool) -> None:
        """Count one scored request; open when the share crosses the bound."""
        with self._lock:
            self._record(violated)

    def _record(self, violated: bool) -> None:
        now = self._clock()
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
        else:
            bucket = [second, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += violated
        self._requests += 1
        self._violating += violated
        self._forget_before(now - self.config.window_seconds)
        if (
            self._opened_at is None
            and self._requests >= self.config.min_requests
            and self.share > self.config.max_violation_share
        ):
            self._opened_at = now

    @property
    def share(self) -> float:
        return self._violating / self._requests if self._requests else 0.0

    def is_open(self) -> bool:
        """Open now? Past its cool-down it closes, with an empty window."""
        with self._lock:
            if self._opened_at is None:
                return False
            if self._clock() - self._opened_at < self._open_seconds:
                return True
            self._reset()
            return False

    def reset(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._opened_at = None
        self._buckets.clear()
        self._requests = self._violating = 0

    def _forget_before(self, oldest: float) -> None:
        while self._buckets and self._buckets[0][0] < int(oldest):
            _, requests, violating = self._buckets.popleft()
            self._requests -= requests
            self._violating -= violating
