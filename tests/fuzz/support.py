"""Shared checks of the fuzz tests: the one error body shape, and sentinels that must not leak."""

from __future__ import annotations

import json
import re
from typing import Any

ERROR_KEYS = {"error_code", "message"}
ERROR_CODE = re.compile(r"[A-Z][A-Z_]*[A-Z]")
TRACEBACK_MARKERS = ("Traceback", 'File "')


def error_body_problem(
    status: int, content_type: str, body: bytes, *, v2: bool = False
) -> str | None:
    """Why an error response breaks the contract, or None: JSON, exactly two string fields;
    on the V2 protocol's paths (`v2`), exactly its one string field, `error`."""
    if status < 400:
        return None
    if not content_type.startswith("application/json"):
        return f"error {status} has Content-Type {content_type!r}, not application/json"
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return f"error {status} body is not JSON: {body[:200]!r}"
    if v2:
        if not isinstance(parsed, dict) or set(parsed) != {"error"}:
            return f"V2 error {status} body is not exactly ['error']: {body[:200]!r}"
        return None if isinstance(parsed["error"], str) else f"V2 error {status}: not a string"
    if not isinstance(parsed, dict) or set(parsed) != ERROR_KEYS:
        return f"error {status} body is not exactly {sorted(ERROR_KEYS)}: {body[:200]!r}"
    if not all(isinstance(parsed[key], str) for key in ERROR_KEYS):
        return f"error {status} body fields are not both strings: {body[:200]!r}"
    if not ERROR_CODE.fullmatch(parsed["error_code"]):
        return f"error {status} has an odd error_code: {parsed['error_code']!r}"
    return None


def traceback_in(text: str) -> bool:
    return any(marker in text for marker in TRACEBACK_MARKERS)
