"""Bounded waits: every poll of a test has a deadline and says what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

Get = Callable[[str], httpx.Response]

# How long an in-process app may take to warm up (its first prediction) on a busy machine.
READY_SECONDS = 30.0


def wait_until(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    *,
    interval: float = 0.2,
    alive: Callable[[], bool] | None = None,
    detail: Callable[[], str] = str,
) -> None:
    """Call `condition` until it is true; fail after `seconds`, or at once when `alive()`
    turns False (the process waited on exited). `detail()` is added to the failure."""
    deadline = time.monotonic() + seconds
    while True:
        if alive is not None and not alive():
            raise AssertionError(f"{what}: the process exited first\n{detail()}")
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{detail()}")
        time.sleep(interval)


def status_of(url: str, get: Get | None = None) -> int | None:
    """The status `url` answers with, or None while nothing listens there."""
    try:
        return (get or _get)(url).status_code
    except httpx.TransportError:
        return None


def wait_ready(
    url: str,
    seconds: float,
    *,
    get: Get | None = None,
    alive: Callable[[], bool] | None = None,
    detail: Callable[[], str] = str,
) -> None:
    """Poll `url` (a /readyz, /ping or /health) until it answers 200.

    `get` is httpx's by default; an in-process app passes its TestClient's `get`.
    """
    wait_until(
        lambda: status_of(url, get) == 200,
        seconds,
        f"{url} answering 200",
        alive=alive,
        detail=detail,
    )


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2)
