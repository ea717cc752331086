"""ServingApp: a scoring POST reaches its endpoint through the app's own middleware, in
their order, and past nothing else; every other request takes FastAPI's way."""

from __future__ import annotations

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.application import ServingApp
from app.paths import SCORING_PATH


class _Recording:
    """A middleware that notes its name when a request passes it."""

    def __init__(self, app: ASGIApp, *, name: str, calls: list[str]) -> None:
        self.app, self.name, self.calls = app, name, calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls.append(self.name)
        await self.app(scope, receive, send)


class _Endpoint:
    """A plain ASGI endpoint, as the scoring one is (a class, so Starlette's Route passes
    it the ASGI call rather than a Request)."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append("endpoint after the router" if "router" in scope else "endpoint")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"scored"})


def _app(calls: list[str]) -> ServingApp:
    endpoint = _Endpoint(calls)
    app = ServingApp(scoring_endpoint=endpoint)
    app.router.routes.append(Route(SCORING_PATH, endpoint=endpoint, methods=["POST"]))
    app.router.routes.append(Route("/other", endpoint=endpoint, methods=["GET"]))
    app.add_middleware(_Recording, name="inner", calls=calls)
    app.add_middleware(_Recording, name="outer", calls=calls)
    return app


def test_a_scoring_post_passes_the_apps_middleware_in_order_and_not_the_router() -> None:
    calls: list[str] = []
    with TestClient(_app(calls)) as client:
        answer = client.post(SCORING_PATH, content=b"{}")
    assert (answer.status_code, answer.text) == (200, "scored")
    assert calls == ["outer", "inner", "endpoint"]


def test_other_requests_and_methods_take_fastapis_way() -> None:
    calls: list[str] = []
    with TestClient(_app(calls)) as client:
        other = client.get("/other")
        wrong_method = client.get(SCORING_PATH)
    assert other.status_code == 200
    assert wrong_method.status_code == 405
    assert calls == ["outer", "inner", "endpoint after the router", "outer", "inner"]


def test_middleware_cannot_be_added_once_serving() -> None:
    """The scoring stack is built with FastAPI's, once: Starlette refuses later additions,
    so the two can never differ."""
    calls: list[str] = []
    app = _app(calls)
    with TestClient(app) as client:
        client.post(SCORING_PATH, content=b"{}")
    with pytest.raises(RuntimeError):
        app.add_middleware(_Recording, name="late", calls=calls)
