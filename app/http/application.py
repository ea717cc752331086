"""The ASGI app: FastAPI, with `POST /invocations` (and the served model's V2 inference
paths) dispatched straight to its endpoint.

Every request to FastAPI passes Starlette's error and exception middleware, FastAPI's
telemetry and body-limit layers and the router before it reaches a route. The scoring
endpoint needs none of them: it answers its own errors and limits (app.http.routes), and the
request-context middleware answers anything it raises. So a scoring request is handed to
the app's own middleware (the list `add_middleware` built, in the same order) wrapped
directly around the endpoint. Other requests, and other methods on the scoring path (a
405), take FastAPI's way; the route stays registered there, so the OpenAPI document and
`url_for` are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi_compat import built_middleware_stack, middleware_layers
from app.paths import SCORING_PATH


class ServingApp(FastAPI):
    def __init__(
        self,
        *,
        scoring_endpoint: ASGIApp,
        other_scoring: Mapping[str, ASGIApp] | None = None,
        **kwargs: Any,
    ) -> None:
        """`other_scoring`: more scoring paths (the V2 inference paths of the served model)
        dispatched the same way, each to its endpoint."""
        super().__init__(**kwargs)
        self._endpoints: dict[str, ASGIApp] = {SCORING_PATH: scoring_endpoint}
        self._endpoints.update(other_scoring or {})
        # Each endpoint inside the app's middleware: built with FastAPI's stack.
        self._stacks: dict[str, ASGIApp] = {}

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack, and beside it the same middleware around each scoring endpoint
        alone. Starlette builds this once, at the first call; middleware cannot be added
        after that."""
        layers = list(reversed(middleware_layers(self)))
        for path, endpoint in self._endpoints.items():
            stack = endpoint
            for cls, args, kwargs in layers:
                stack = cls(stack, *args, **kwargs)
            self._stacks[path] = stack
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path in self._endpoints:
                built_middleware_stack(self)  # the scoring stacks are built with it
                scope["app"] = self
                await self._stacks[path](scope, receive, send)
                return
        await super().__call__(scope, receive, send)
