"""The steady client: scoring requests at a fixed rate for as long as a drill runs, each
answer timed and checked against the answer the healthy service gave to the same rows."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

# Consecutive correct answers that mark a recovery.
RECOVERED_AFTER = 10


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when sent
    took: float  # seconds until answered (or failed)
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    correct: bool


@dataclass
class SteadyClient:
    """Sends `bodies` round-robin, `rate` requests a second, until stopped."""

    base_url: str
    bodies: list[bytes]
    rate: float = 4.0
    timeout: float = 5.0
    reference: list[Any] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def capture_reference(self) -> None:
        """What the healthy service answers to each body: the correct answers from now on."""
        with httpx.Client(timeout=30) as http:
            self.reference = [self._post(http, body).json()["predictions"] for body in self.bodies]

    def run(self, seconds_cap: float) -> threading.Thread:
        """Start sending in the background, for at most `seconds_cap` seconds."""
        thread = threading.Thread(target=self._send_loop, args=(seconds_cap,), daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _send_loop(self, seconds_cap: float) -> None:
        deadline = time.monotonic() + seconds_cap
        period = 1.0 / self.rate
        with (
            httpx.Client(timeout=self.timeout, limits=httpx.Limits(max_connections=64)) as http,
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="steady") as pool,
        ):
            index = 0
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                pool.submit(self._one, http, index % len(self.bodies))
                index += 1
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _post(self, http: httpx.Client, body: bytes) -> httpx.Response:
        return http.post(
            f"{self.base_url}/invocations",
            content=body,
            headers={"Content-Type": "application/json"},
        )

    def _one(self, http: httpx.Client, index: int) -> None:
        sent = time.monotonic()
        status: int | None = None
        correct = False
        try:
            response = self._post(http, self.bodies[index])
            status = response.status_code
            correct = status == 200 and response.json()["predictions"] == self.reference[index]
        except (httpx.HTTPError, json.JSONDecodeError, KeyError):
            pass
        with self._lock:
            self.answers.append(Answer(sent, time.monotonic() - sent, status, correct))

    def answers_since(self, since: float) -> list[Answer]:
        """Answers to the requests sent at or after `since`, in the order they were sent."""
        with self._lock:
            return sorted((a for a in self.answers if a.sent >= since), key=lambda a: a.sent)

    def recovered_at(self, since: float) -> float | None:
        """When the first of RECOVERED_AFTER consecutive correct answers was sent, after the
        last wrong one since `since`; None while that run has not happened."""
        answers = self.answers_since(since)
        run_start: float | None = None
        run = 0
        wrong_seen = False
        for answer in answers:
            if answer.correct:
                if run == 0:
                    run_start = answer.sent
                run += 1
            else:
                wrong_seen = True
                run = 0
        if not wrong_seen:
            return since if run >= RECOVERED_AFTER else None
        return run_start if run >= RECOVERED_AFTER else None

    def failed_between(self, start: float, end: float) -> tuple[int, int]:
        """Wrong or missing answers, and all answers, to requests sent in [start, end)."""
        answers = [a for a in self.answers_since(start) if a.sent < end]
        return sum(not a.correct for a in answers), len(answers)
