"""Every private Uvicorn, Starlette and FastAPI name the server relies on, in one place.

The production worker hardens Uvicorn's httptools protocol from inside (app.server.worker:
it overrides the parser's callbacks, reads the protocol's state, answers a refusal without
a request cycle); the app hands a scoring request to its middleware without FastAPI's
router (app.http.application); and the route label finds routes inside included routers
(app.http.middleware). None of that is public API. The packages are pinned in
requirements.txt; `internals_problems` looks for every name at start-up, so an upgrade that
moves one stops the server with that name instead of failing on requests
(tests/app/test_asgi_compat.py lists and exercises them). app.mlflow_compat does the same
for MLflow's and pandas' names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker

__all__ = ["HttpToolsProtocol", "RequestResponseCycle"]

# The httptools protocol's callbacks the worker overrides or calls.
PROTOCOL_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_response_complete",
    "send_400_response",
)
# The protocol's state the worker reads, set by the protocol's own code.
PROTOCOL_ATTRIBUTES = (
    "config",
    "loop",
    "server_state",
    "app_state",
    "transport",
    "parser",
    "url",
    "headers",
    "scope",
    "cycle",
)
# Its constructor's arguments, `_loop` among them: a queued connection's protocol is built
# as Uvicorn builds one.
PROTOCOL_ARGUMENTS = ("config", "server_state", "app_state", "_loop")
# A request cycle's flags, which a refusal's stand-in cycle must carry too.
CYCLE_ATTRIBUTES = ("response_complete", "more_body", "message_event")
# The server's state: the headers every answer carries, and the count MAX_REQUESTS reads.
SERVER_STATE_ATTRIBUTES = ("default_headers", "total_requests")


def new_protocol_like(protocol: HttpToolsProtocol, **extra: Any) -> Any:
    """A protocol of the same class and server for another connection, as Uvicorn makes
    one (its constructor takes the event loop as the private `_loop`)."""
    return type(protocol)(
        config=protocol.config,
        server_state=protocol.server_state,
        app_state=protocol.app_state,
        _loop=protocol.loop,
        **extra,
    )


def uncount_request(server_state: ServerState) -> None:
    """Take back Uvicorn's count of a request toward MAX_REQUESTS (a refusal leaves
    nothing behind that recycling the worker would clean)."""
    server_state.total_requests -= 1


def worker_config(**overrides: Any) -> dict[str, Any]:
    """The Uvicorn worker's configuration for Gunicorn, with `overrides`."""
    return {**UvicornWorker.CONFIG_KWARGS, **overrides}


def middleware_layers(app: Starlette) -> list[tuple[Callable[..., Any], Any, Any]]:
    """The middleware `add_middleware` recorded, outermost first, as (class, args, kwargs)."""
    return [(entry.cls, entry.args, entry.kwargs) for entry in app.user_middleware]


def built_middleware_stack(app: Starlette) -> Any:
    """The app's middleware stack, built now if Starlette has not yet built it."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    return app.middleware_stack


def leaf_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """Routes with a path template, from inside included routers too (FastAPI 0.165 lists
    an included router as one entry, its routes under `original_router`)."""
    leaves: list[BaseRoute] = []
    for route in routes:
        if hasattr(route, "path"):
            leaves.append(route)
        else:
            inner = getattr(getattr(route, "original_router", route), "routes", [])
            leaves.extend(leaf_routes(inner))
    return leaves


def internals_problems() -> list[str]:
    """Every name above that the installed packages no longer have; empty when all are."""
    problems = []
    protocol_names = _names_used_by(HttpToolsProtocol)
    for name in PROTOCOL_METHODS:
        if not callable(getattr(HttpToolsProtocol, name, None)):
            problems.append(f"uvicorn HttpToolsProtocol.{name}()")
    for name in PROTOCOL_ATTRIBUTES:
        if name not in protocol_names:
            problems.append(f"uvicorn HttpToolsProtocol.{name}")
    parameters = inspect.signature(HttpToolsProtocol.__init__).parameters
    for name in PROTOCOL_ARGUMENTS:
        if name not in parameters:
            problems.append(f"uvicorn HttpToolsProtocol({name}=...)")
    cycle_names = _names_used_by(RequestResponseCycle)
    for name in CYCLE_ATTRIBUTES:
        if name not in cycle_names:
            problems.append(f"uvicorn RequestResponseCycle.{name}")
    state = ServerState()
    for name in SERVER_STATE_ATTRIBUTES:
        if not hasattr(state, name):
            problems.append(f"uvicorn ServerState.{name}")
    if not isinstance(getattr(UvicornWorker, "CONFIG_KWARGS", None), dict):
        problems.append("uvicorn_worker UvicornWorker.CONFIG_KWARGS")
    problems += _starlette_problems()
    return problems


def _names_used_by(cls: type) -> set[str]:
    """The attribute names the class's own functions read or set."""
    names: set[str] = set()
    for value in vars(cls).values():
        if inspect.isfunction(value):
            names.update(value.__code__.co_names)
    return names


class _Layer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _starlette_problems() -> list[str]:
    """Exercised on a throwaway app: cheaper to run than to reason about."""
    problems = []
    app = FastAPI()
    app.add_middleware(_Layer)  # never built: only recorded
    try:
        layers = middleware_layers(app)
        if layers[0][0] is not _Layer:
            problems.append("starlette Starlette.user_middleware entries")
    except (AttributeError, IndexError, TypeError):
        problems.append("starlette Starlette.user_middleware entries")
    if not hasattr(app, "middleware_stack") or not callable(
        getattr(app, "build_middleware_stack", None)
    ):
        problems.append("starlette Starlette.middleware_stack, build_middleware_stack()")
    router = APIRouter()
    router.add_api_route("/probe", lambda: None)
    app.include_router(router)
    if "/probe" not in {getattr(route, "path", None) for route in leaf_routes(app.routes)}:
        problems.append("fastapi included router's original_router")
    return problems
