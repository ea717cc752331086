"""A hostile corpus against POST /invocations of a started app, in-process.

For every case: no 5xx, an error body of exactly `{"error_code", "message"}` (or 200 where
the request is valid), none of the case's sentinels in the response or in any log record,
and no traceback text in the response or in the request log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.fuzz.corpus import HostileCase, hostile_cases
from tests.fuzz.support import error_body_problem, traceback_in

ACCESS_LOGGER = "app.access"
_FORMATTER = logging.Formatter("%(name)s %(levelname)s %(message)s")


@pytest.fixture(scope="module")
def hostile_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def record_text(record: logging.LogRecord) -> str:
    """All a handler could write: message, extra fields and any exception text."""
    extras = {k: v for k, v in record.__dict__.items() if k not in {"msg", "args", "exc_info"}}
    return f"{_FORMATTER.format(record)} {extras!r}"


def send(client: TestClient, case: HostileCase) -> tuple[int, str, bytes, str]:
    headers = {} if case.content_type is None else {"Content-Type": case.content_type}
    response = client.post("/invocations", content=case.body, headers=headers)
    header_text = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        (header_text),
    )


@pytest.mark.parametrize("case", hostile_cases(), ids=lambda case: case.name)
def test_hostile_request_gets_no_5xx_no_echo_and_no_traceback(
    case: HostileCase, hostile_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the production level (LOG_LEVEL=info)
    status, content_type, body, headers = send(hostile_client, case)
    text = body.decode("utf-8", "replace")

    assert status in case.allowed, f"{case.name}: {status} {text[:300]}"
    assert error_body_problem(status, content_type, body) is None
    assert not traceback_in(text)
    for mark in case.sentinels:
        assert mark not in text, f"the response echoes {mark!r}: {text[:300]}"
        assert mark not in headers, f"a response header echoes {mark!r}"

    records = [record_text(record) for record in caplog.records]
    leaked = [line[:300] for line in records for mark in case.sentinels if mark in line]
    assert leaked == []
    access = [record for record in caplog.records if record.name == ACCESS_LOGGER]
    assert len(access) == 1, "one request log line per request"
    assert access[0].__dict__["status"] == status
    assert not traceback_in(record_text(access[0]))


def test_the_corpus_covers_what_the_issue_lists() -> None:
    """Guard against the corpus losing a category in a later edit."""
    names = " ".join(case.name for case in hostile_cases())
    for expected in [
        "nan-literal",
        "infinity-literal",
        "float-overflow-1e400",
        "integer-literal-10-pow-400",
        "wrong-type-",
        "missing-column",
        "extra-column",
        "empty-body",
        "null-body",
        "empty-object",
        "invalid-utf8-json",
        "duplicate-keys",
        "nested-arrays-10000",
        "content-type-missing",
        "content-type-text-plain",
        "zero-rows-records",
        "rows-10000",
        "one-megabyte-string-value",
        "unicode-column-names",
        "csv-formula-equals",
        "budget-wide-instances",
        "budget-wide-csv-header",
        "budget-parquet-many-rows",
        "budget-parquet-category-columns",
        "budget-million-rows",
        "utf16-json",
        "utf32-json",
    ]:
        assert expected in names, expected
