"""Credentials never reach an output: the one helper every log line and JSON result passes.

A registry address may carry `user:password@`, MLflow repeats that address inside its
error messages ("API request to http://user:password@host/... failed"), and a message may
quote a token or a presigned URL. Redaction works on whole texts, wherever in them the
secret sits: URL credentials, secret-looking query or key=value parameters, and the values
of the credential variables MLflow and the storage clients read.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"

# scheme://userinfo@ : everything between :// and the @ that ends the authority.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_SECRET_PARAMETER = re.compile(
    r"(?i)\b(?P<name>password|passwd|pwd|token|access_token|refresh_token|secret"
    r"|client_secret|api_key|apikey|sig|signature|x-amz-signature|x-amz-credential"
    r"|x-amz-security-token)=[^&\s'\",;]+"
)
# Variables whose values are secrets wherever they appear.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_SECRET",
    "API_KEYS",
)
# Variables holding URIs whose password is a secret wherever it appears, even unquoted.
URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# Shorter values would mask ordinary words; the URL and parameter patterns still apply.
_MIN_SECRET_CHARS = 4


def redact(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """`text` with every credential it carries replaced by ***."""
    return _redact(text, _secret_values(environ))


def redact_values(value: Any, environ: Mapping[str, str] = os.environ) -> Any:
    """Every string inside a JSON-like value (dicts, lists) redacted."""
    return _redact_values(value, _secret_values(environ))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    # Each pattern needs its marker: most texts (every access line) have neither.
    if "://" in text:
        text = _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    if "=" in text:
        text = _SECRET_PARAMETER.sub(rf"\g<name>={MASK}", text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _redact_values(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {key: _redact_values(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(item, secrets) for item in value]
    return value


def _secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets in the environment as it is now (read on every call: it may change)."""
    return _secrets_of(
        tuple(environ.get(name, "") for name in SECRET_VARIABLES),
        tuple(environ.get(name, "") for name in URI_VARIABLES),
    )


@functools.lru_cache(maxsize=8)
def _secrets_of(secret_texts: tuple[str, ...], uris: tuple[str, ...]) -> tuple[str, ...]:
    """The secrets these variable values hold, longest first (a secret inside another goes
    last). Cached: a log line would otherwise parse the same URIs again."""
    values = set()
    for name, raw in zip(SECRET_VARIABLES, secret_texts, strict=True):
        values |= {part.strip() for part in raw.split(",")} if name == "API_KEYS" else {raw}
    for uri in uris:
        try:
            password = urlsplit(uri).password
        except ValueError:  # a malformed URI: its userinfo is still caught by the pattern
            password = None
        if password:
            values |= {password, unquote(password)}
    return tuple(sorted((v for v in values if len(v) >= _MIN_SECRET_CHARS), key=len, reverse=True))
