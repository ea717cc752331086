"""Driving an app in one process with concurrent requests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import httpx
from fastapi.testclient import TestClient


def score_concurrently(
    app_client: TestClient, bodies: Sequence[Mapping[str, object]]
) -> list[httpx.Response]:
    """Send all bodies at once, on the event loop the app (and its batcher) runs on."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *(client.post("/invocations", json=body) for body in bodies)
            )

    assert app_client.portal is not None
    return app_client.portal.call(send_all)
