"""Every private Uvicorn, Starlette and FastAPI name the server relies on (app.asgi_compat):
each is there in the pinned versions, each helper does what its caller needs, and a missing
one stops the start with its name."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker

from app import asgi_compat
from app.asgi_compat import (
    HttpToolsProtocol,
    built_middleware_stack,
    internals_problems,
    leaf_routes,
    middleware_layers,
    new_protocol_like,
    uncount_request,
    worker_config,
)
from app.main import create_app
from app.runtime.model import ServedModel
from app.server.worker import ServingProtocol, ServingWorker


class _Passthrough:
    def __init__(self, app: ASGIApp, *, label: str) -> None:
        self.app = app
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def test_every_internal_the_server_relies_on_is_there() -> None:
    assert internals_problems() == []


def test_a_queued_connection_gets_a_protocol_built_as_uvicorn_builds_one() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request is sent")

    config = uvicorn.Config(app, http=ServingProtocol, log_config=None)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        state = ServerState()
        first = ServingProtocol(config=config, server_state=state, app_state={}, _loop=loop)
        queued = new_protocol_like(first, takes_queue=False)
    finally:
        loop.close()
    assert type(queued) is ServingProtocol
    assert (queued.config, queued.server_state, queued.loop) == (config, state, loop)
    assert queued.app_state is first.app_state
    assert queued._takes_queue is False


def test_a_refusal_is_taken_back_from_the_count_max_requests_reads() -> None:
    state = ServerState()
    state.total_requests = 5
    uncount_request(state)
    assert state.total_requests == 4


def test_the_worker_runs_uvicorn_with_our_protocol_and_uvicorns_other_settings() -> None:
    assert ServingWorker.CONFIG_KWARGS["http"] is ServingProtocol
    others = {k: v for k, v in ServingWorker.CONFIG_KWARGS.items() if k != "http"}
    assert others == {k: v for k, v in UvicornWorker.CONFIG_KWARGS.items() if k != "http"}
    assert worker_config(http="h11")["http"] == "h11"


def test_the_middleware_recorded_is_listed_outermost_first_and_the_stack_built_once() -> None:
    app = FastAPI()
    app.add_middleware(_Passthrough, label="inner")
    app.add_middleware(_Passthrough, label="outer")
    layers = middleware_layers(app)
    assert [(cls, kwargs["label"]) for cls, _, kwargs in layers] == [
        (_Passthrough, "outer"),
        (_Passthrough, "inner"),
    ]
    stack = built_middleware_stack(app)
    assert stack is not None
    assert built_middleware_stack(app) is stack


def test_routes_inside_an_included_router_are_found() -> None:
    app = FastAPI()
    router = APIRouter()
    router.add_api_route("/inside", lambda: None)
    app.include_router(router)
    assert "/inside" in {getattr(route, "path", None) for route in leaf_routes(app.routes)}


class _StateWithoutCount:
    """Uvicorn's server state as it would be without the request count."""

    def __init__(self) -> None:
        self.default_headers: list[Any] = []


@pytest.mark.parametrize(
    ("break_it", "named"),
    [
        (
            lambda patch: patch.delattr(HttpToolsProtocol, "send_400_response"),
            "uvicorn HttpToolsProtocol.send_400_response()",
        ),
        (
            lambda patch: patch.setattr(
                HttpToolsProtocol, "__init__", lambda self, config, server_state: None
            ),
            "uvicorn HttpToolsProtocol(_loop=...)",
        ),
        (
            lambda patch: patch.setattr(asgi_compat, "ServerState", _StateWithoutCount),
            "uvicorn ServerState.total_requests",
        ),
        (
            lambda patch: patch.delattr(UvicornWorker, "CONFIG_KWARGS"),
            "uvicorn_worker UvicornWorker.CONFIG_KWARGS",
        ),
        (
            lambda patch: patch.setattr(asgi_compat, "leaf_routes", lambda routes: []),
            "fastapi included router's original_router",
        ),
    ],
)
def test_a_missing_internal_stops_the_start_naming_it(
    served_model: ServedModel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    break_it: Any,
    named: str,
) -> None:
    break_it(monkeypatch)
    assert named in internals_problems()
    with caplog.at_level(logging.CRITICAL), pytest.raises(SystemExit) as stopped:
        create_app(model=served_model)
    assert stopped.value.code == 3
    assert named in caplog.text
