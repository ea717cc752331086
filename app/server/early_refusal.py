"""Early refusal: a scoring request (/invocations or a V2 inference path) past the admission
bound is answered 503 as soon as its head is parsed (app.http.admission.EarlyShed), with no
ASGI app or task, and it does not count toward MAX_REQUESTS. The protocol's other answer
without the app, the 431, is accounted here too.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.types import Scope

from app.asgi_compat import HttpToolsProtocol, RequestResponseCycle, uncount_request
from app.errors import ServingError, http_error_response
from app.http.admission import EarlyShed, early_shed_of
from app.paths import UNMATCHED_ROUTE


class RefusesEarly(HttpToolsProtocol):
    """Refuses past the bound from the parser's callback, when the app offers an EarlyShed
    (app.main does); any other ASGI app sheds in its middleware."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early_shed = early_shed_of(self.config.app)

    def on_headers_complete(self) -> None:
        shed = self._early_shed
        if shed is None:
            super().on_headers_complete()
            return
        state, previous = self.scope["state"], self.cycle
        if (
            previous is None or previous.response_complete  # none pipelined ahead
        ) and shed.refuses(self.parser.get_method(), self.url, state):
            self._answer_refusal(shed)
            return
        super().on_headers_complete()
        if self.cycle is previous:  # no request cycle: the connection upgrades
            shed.release_unserved(state)

    def _answer_refusal(self, shed: EarlyShed) -> None:
        """Write the 503 from the parser's callback: no cycle, task or app. Whatever of the
        request's body still arrives is dropped (the placeholder cycle is answered)."""
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
        self.cycle = cast(RequestResponseCycle, _Refused())
        headers = self.server_state.default_headers
        if not keep_alive:
            headers = [*headers, (b"connection", b"close")]
        self.transport.write(shed.answer(cast(Scope, self.scope), headers, self.url))
        if not keep_alive:
            self.transport.close()
            return
        # Uvicorn's bookkeeping for an answered request (reading resumed, keep-alive timer),
        # without counting it toward MAX_REQUESTS: a refusal leaves nothing behind to
        # recycle, and under overload the refusals would recycle every worker within
        # seconds, each time resetting its connections and warming up a successor.
        self.on_response_complete()
        uncount_request(self.server_state)

    def answer_without_app(self, error: ServingError, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The whole HTTP answer to a request refused before its head was complete,
        counted and logged as the app's answers are (with no route: the head is cut)."""
        if self._early_shed is None:
            return http_error_response(error, headers)
        scope = cast(Scope, self.scope)
        scope["method"] = self.parser.get_method().decode("ascii", "replace")
        scope["state"]["route_template"] = UNMATCHED_ROUTE
        return self._early_shed.refused(scope, error, headers)


class _Refused:
    """The cycle of a request refused by the protocol: answered, so Uvicorn's parser
    callbacks drop its body; a close lingers while the body may still be arriving."""

    response_complete = True
    more_body = True
    # Uvicorn wakes a cycle's body reader when its connection is lost; this cycle has none.
    message_event = asyncio.Event()
