"""What a not-ready /readyz answers, wherever it is asked (app, ops listener)."""

from __future__ import annotations

import httpx


def assert_not_ready(response: httpx.Response, reason: str) -> None:
    """503, retry in a second, and the error body naming why."""
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": f"not ready: {reason}",
    }
