"""Schemathesis against our own OpenAPI document, in-process, on the real demo model.

Cases are drawn from the schema in both modes (schema-valid and schema-violating bodies,
JSON and CSV) and sent through a started app. Whatever comes in, the answer is never a
5xx, and every error is `{"error_code": str, "message": str}` exactly.

Schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) reads a node attribute
pytest 9 removed, so cases are drawn with Hypothesis' `data()` from the operation strategies
instead; the model only exists once the session's registry fixture has trained it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Result
from schemathesis.schemas import APIOperation, BaseSchema

from app.main import create_app
from app.paths import is_v2_path
from app.runtime.model import ServedModel
from app.settings import Settings
from tests.fuzz.support import error_body_problem, traceback_in
from tests.support.waiting import READY_SECONDS, wait_ready

# Each example is bounded by the deadline, each test by its count of examples (about 10 s
# when all pass). A failure is shrunk to a small reproduction, but only the first one found,
# and without the explain phase, so a failing run stays near a minute.
FUZZ_SETTINGS = settings(
    deadline=timedelta(seconds=10),
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    print_blob=True,
)
_TRANSPORT_KEYS = {"method", "url", "headers", "params", "cookies", "json", "data"}
# An operation of any OpenAPI schema: its parameter, response and schema types do not matter here.
Operation = APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def fuzz_client(served_model: ServedModel) -> Iterator[TestClient]:
    """An app of its own that answers a server fault with its 500, as Uvicorn would.

    (The suite's `make_client` re-raises server errors in the test, which hides the
    response and Schemathesis' reproduction command.)
    """
    app = create_app(Settings(), model=served_model)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        yield client


@pytest.fixture(scope="module")
def api_schema(fuzz_client: TestClient) -> BaseSchema:
    response = fuzz_client.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def _any_mode(operations: BaseSchema | Operation) -> st.SearchStrategy[Case[Operation]]:
    return operations.as_strategy(GenerationMode.POSITIVE) | operations.as_strategy(
        GenerationMode.NEGATIVE
    )


def _send(client: TestClient, case: Case[Operation]) -> httpx.Response:
    """The case through the TestClient (Schemathesis serialises it as for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    assert set(kwargs) <= _TRANSPORT_KEYS | {"timeout", "allow_redirects", "verify"}, kwargs
    body = kwargs.get("data")
    # Starlette annotates it with httpx2 (not installed; it falls back to httpx): Any to mypy.
    response: httpx.Response = client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies") or None,
        json=kwargs.get("json"),
        content=body.encode() if isinstance(body, str) else body,
    )
    return response


def _check(case: Case[Operation], response: httpx.Response) -> None:
    case.validate_response(response, checks=[not_a_server_error])
    where = f"reproduce with: {case.as_curl_command()}"
    problem = error_body_problem(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        v2=is_v2_path(response.url.path),
    )
    assert problem is None, f"{problem}\n{where}"
    assert not traceback_in(response.text), f"traceback in the response\n{where}"


def _operation(result: Result[Operation, InvalidSchema]) -> Operation:
    """The operation read from the schema, or the error that kept it from being read."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def test_the_schema_documents_invocations_and_the_get_routes(api_schema: BaseSchema) -> None:
    operations = {
        (_operation(result).method.upper(), _operation(result).path)
        for result in api_schema.get_all_operations()
    }
    assert ("POST", "/invocations") in operations
    assert {("GET", path) for path in ("/readyz", "/livez", "/version", "/metrics")} <= operations


@settings(FUZZ_SETTINGS, max_examples=200)
@given(data=st.data())
def test_invocations_never_answers_5xx_and_errors_have_the_error_shape(
    data: st.DataObject, api_schema: BaseSchema, fuzz_client: TestClient
) -> None:
    case = data.draw(_any_mode(api_schema["/invocations"]["POST"]), label="case")
    _check(case, _send(fuzz_client, case))


@settings(FUZZ_SETTINGS, max_examples=100)
@given(data=st.data())
def test_get_routes_never_answer_5xx_and_errors_have_the_error_shape(
    data: st.DataObject, api_schema: BaseSchema, fuzz_client: TestClient
) -> None:
    case = data.draw(_any_mode(api_schema.include(method="GET")), label="case")
    _check(case, _send(fuzz_client, case))
