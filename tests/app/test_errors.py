"""Every error case answers MLflow's error body exactly, with the right status, echoing nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.demo import VALID_ROW

SENTINEL = "sentinel-applicant-value"

CASES = [
    # (id, body bytes, content type, status, error_code, message fragment)
    ("not_json", b"{not json", "application/json", 400, "BAD_REQUEST", "not valid JSON"),
    (
        "invalid_utf8",
        b'{"data": ["\xff\xfe"]}',
        "application/json",
        400,
        "BAD_REQUEST",
        "not valid JSON",
    ),
    ("empty_body", b"", "application/json", 400, "BAD_REQUEST", "not valid JSON"),
    ("json_list", b"[1, 2]", "application/json", 400, "BAD_REQUEST", "the JSON body is an array"),
    (
        "no_input_field",
        b'{"rows": []}',
        "application/json",
        400,
        "BAD_REQUEST",
        "found 0 input fields (none)",
    ),
    (
        "two_input_fields",
        b'{"instances": [], "inputs": []}',
        "application/json",
        400,
        "BAD_REQUEST",
        "found 2 input fields ('instances', 'inputs')",
    ),
    (
        "records_not_a_list",
        b'{"dataframe_records": {"a": 1}}',
        "application/json",
        400,
        "BAD_REQUEST",
        "'dataframe_records' is not valid",
    ),
    (
        "split_without_data",
        b'{"dataframe_split": {"columns": ["age"]}}',
        "application/json",
        400,
        "BAD_REQUEST",
        "'dataframe_split' is not valid",
    ),
    (
        "params_not_object",
        b'{"data": [], "params": [1]}',
        "application/json",
        400,
        "BAD_REQUEST",
        "'params' must be a JSON object",
    ),
    ("no_rows", b'{"dataframe_records": []}', "application/json", 400, "BAD_REQUEST", "no rows"),
    (
        "xml",
        b"<a/>",
        "application/xml",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "unsupported Content-Type 'application/xml'",
    ),
    ("no_content_type", b"{}", "", 415, "UNSUPPORTED_MEDIA_TYPE", "missing Content-Type"),
    (
        "latin1",
        b"{}",
        "application/json; charset=latin-1",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "only the UTF-8 charset",
    ),
    (
        "csv_ragged",
        b"age,income\n1,2\n3,4,5,6\n",
        "text/csv",
        400,
        "BAD_REQUEST",
        "CSV body cannot be parsed",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_requests_get_mlflow_error_bodies(
    client: TestClient, body: bytes, content_type: str, status: int, code: str, fragment: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"error_code", "message"}
    assert payload["error_code"] == code
    assert fragment in payload["message"]


SCHEMA_CASES = [
    (
        "missing_column",
        {k: v for k, v in VALID_ROW.items() if k != "age"},
        "missing required column(s): 'age'",
    ),
    (
        "text_in_long",
        {**VALID_ROW, "age": SENTINEL},
        "column 'age' expects long (whole numbers), got text",
    ),
    (
        "decimal_in_long",
        {**VALID_ROW, "age": 35.5},
        "column 'age' expects long (whole numbers), got decimal numbers",
    ),
    (
        "null_in_required",
        {**VALID_ROW, "income": None},
        "column 'income' is required but has missing",
    ),
    (
        "bool_in_double",
        {**VALID_ROW, "income": True},
        "column 'income' expects double (numbers), got booleans",
    ),
    (
        "number_in_string",
        {**VALID_ROW, "employment_status": 3},
        "column 'employment_status' expects string (text), got numbers",
    ),
    (
        "object_in_double",
        {**VALID_ROW, "income": {"v": SENTINEL}},
        "column 'income' expects double (numbers), got objects",
    ),
]


@pytest.mark.parametrize(
    ("row", "fragment"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_schema_violations_are_422_naming_column_and_type(
    client: TestClient, row: dict[str, object], fragment: str
) -> None:
    response = client.post("/invocations", json={"dataframe_records": [row]})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": response.json()["message"],
    }
    assert fragment in response.json()["message"]
    assert SENTINEL not in response.text


def test_csv_value_of_wrong_type_names_the_column(client: TestClient) -> None:
    header = ",".join(VALID_ROW)
    values = ",".join(SENTINEL if k == "age" else str(v) for k, v in VALID_ROW.items())
    response = client.post(
        "/invocations", content=f"{header}\n{values}\n", headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 422, response.text
    assert "column 'age' expects long" in response.json()["message"]
    assert SENTINEL not in response.text


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"low_threshold": "high"}, "param 'low_threshold' expects double (numbers), got text"),
        ({"low_threshold": 0.9, "high_threshold": 0.1}, "0 <= low < high <= 1"),
    ],
)
def test_bad_params_are_422(client: TestClient, params: dict[str, object], fragment: str) -> None:
    response = client.post(
        "/invocations", json={"dataframe_records": [VALID_ROW], "params": params}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in response.json()["message"]


def test_unknown_route_and_wrong_method_use_the_same_body(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error_code": "ENDPOINT_NOT_FOUND", "message": "Not Found"}
    wrong_method = client.get("/invocations")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error_code": "BAD_REQUEST", "message": "Method Not Allowed"}
