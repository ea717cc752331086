"""The ASGI app: FastAPI, with `POST /invocations` dispatched straight to its endpoint.

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

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi_compat import built_middleware_stack, middleware_layers
from app.paths import SCORING_PATH


class ServingApp(FastAPI):
    def __init__(self, *, scoring_endpoint: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scoring_endpoint = scoring_endpoint
        self._scoring_stack: ASGIApp = scoring_endpoint

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack, and beside it the same middleware around the scoring endpoint
        alone. Starlette builds this once, at the first call; middleware cannot be added
        after that."""
        scoring = self._scoring_endpoint
        for cls, args, kwargs in reversed(middleware_layers(self)):
            scoring = cls(scoring, *args, **kwargs)
        self._scoring_stack = scoring
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == SCORING_PATH and scope["method"] == "POST":
            built_middleware_stack(self)  # the scoring stack is built with it
            scope["app"] = self
            await self._scoring_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
