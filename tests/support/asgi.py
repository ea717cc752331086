"""Driving an app in one process: concurrent requests, and the paths that reach it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send


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


class CountingApp:
    """An app, noting the path of each request that reaches it; the worker's protocol
    finds the app's early shed through `state`, as on the app itself."""

    def __init__(self, app: Any) -> None:
        self.app, self.state = app, app.state
        self.entered: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.entered.append(scope["path"])
        await self.app(scope, receive, send)
