"""Optional API-key authentication as pure ASGI middleware.

Keys come from API_KEYS and/or a mounted file (API_KEYS_FILE). A request presents one as
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Every configured key is compared in
constant time, and all of them always, so timing tells nothing about which key is close.
Probes are always open; /metrics and /docs are open when configured public.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import UnauthenticatedError, answer_error
from app.paths import METRICS_PATH, PROBE_PATHS
from app.settings import Settings

logger = logging.getLogger(__name__)

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
CHALLENGE = 'Bearer realm="model-serving"'


class ApiKeysError(Exception):
    """Authentication is configured but cannot be enforced; the server must not start."""


def load_api_keys(settings: Settings) -> list[bytes]:
    """The configured keys; none configured (no API_KEYS, no API_KEYS_FILE) means auth off.

    Fails closed: a key file that is missing, unreadable, empty or blank stops start-up
    rather than turning authentication off (a Secret mounted empty by mistake would
    otherwise open the service).
    """
    keys = [key.strip() for key in settings.api_keys.split(",")]
    if settings.api_keys_file:
        try:
            from_file = [
                line.strip() for line in Path(settings.api_keys_file).read_text().splitlines()
            ]
        except (OSError, UnicodeDecodeError) as error:
            raise ApiKeysError(
                f"API_KEYS_FILE {settings.api_keys_file} cannot be read: {error}"
            ) from error
        if not any(from_file):
            raise ApiKeysError(
                f"API_KEYS_FILE {settings.api_keys_file} holds no key; authentication "
                "would be off (unset API_KEYS_FILE to run without keys)"
            )
        keys += from_file
    elif settings.api_keys.strip() and not any(keys):
        raise ApiKeysError("API_KEYS is set but holds no key (only commas and blanks)")
    return [key.encode() for key in keys if key]


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, keys: list[bytes], settings: Settings) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = set(PROBE_PATHS)
        if settings.metrics_public:
            self.open_paths.add(METRICS_PATH)
        if settings.docs_public:
            self.open_paths |= DOCS_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        error = UnauthenticatedError(
            "a valid API key is required (Authorization: Bearer)",
            headers={"WWW-Authenticate": CHALLENGE},
        )
        await answer_error(scope, send, error)

    def _authorised(self, scope: Scope) -> bool:
        presented = _presented_key(scope)
        if presented is None:
            return False
        matched = False
        for key in self.keys:  # no early exit: the time spent does not depend on the match
            matched |= hmac.compare_digest(presented, key)
        return matched


def _presented_key(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
        if name == b"x-api-key":
            return bytes(value.strip())
    return None
