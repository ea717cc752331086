"""The request budget: rows, columns and cells refused before a table is built, per format;
and the inputs that once answered 500 or a wrong answer."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from bench.hostile_bodies import CSV, JSON, PARQUET, VALID_ROW, gzip_members_body
from tests.support.demo import VALID_ROW as TESTS_ROW

CSV_HEADER = ",".join(VALID_ROW)
CSV_LINE = ",".join(str(value) for value in VALID_ROW.values())


def post(
    client: TestClient, body: bytes, content_type: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = client.post(
        "/invocations", content=body, headers={"Content-Type": content_type, **headers}
    )
    return response.status_code, response.json()


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, compression="zstd", index=False)
    return buffer.getvalue()


def test_bench_rows_are_the_test_rows() -> None:
    assert VALID_ROW == TESTS_ROW


@pytest.fixture(scope="module")
def small_budget(make_client: Callable[..., TestClient]) -> TestClient:
    """Limits small enough to pass in a few bytes; the signature has 9 columns."""
    return make_client(max_request_columns=12, max_request_cells=60, max_request_rows=5)


WIDE = 13  # one past MAX_REQUEST_COLUMNS=12


@pytest.mark.parametrize(
    ("name", "body", "content_type", "setting"),
    [
        ("instances-wide", b'{"instances":[[' + b",".join([b"0"] * WIDE) + b"]]}", JSON, "COLUMNS"),
        (
            "records-wide",
            b'{"dataframe_records":[{' + b",".join(b'"c%d":0' % i for i in range(WIDE)) + b"}]}",
            JSON,
            "COLUMNS",
        ),
        (
            "split-wide",
            b'{"dataframe_split":{"columns":['
            + b",".join(b'"c%d"' % i for i in range(WIDE))
            + b'],"data":[]}}',
            JSON,
            "COLUMNS",
        ),
        ("instances-many-rows", b'{"instances":[' + b",".join([b"[0]"] * 6) + b"]}", JSON, "ROWS"),
        (
            "records-many-cells",
            b'{"dataframe_records":[' + b",".join([b'{"a":1,"b":2,"c":3}'] * 5) + b"]}",
            JSON,
            None,
        ),
        (
            "csv-header-wide",
            (",".join(f"c{i}" for i in range(WIDE)) + "\n").encode(),
            CSV,
            "COLUMNS",
        ),
        (
            "parquet-many-rows",
            parquet(pd.DataFrame([VALID_ROW] * 6)),
            PARQUET,
            "ROWS",
        ),
        (
            "parquet-wide",
            parquet(pd.DataFrame({f"c{i}": [0] for i in range(WIDE)})),
            PARQUET,
            "COLUMNS",
        ),
    ],
)
def test_past_the_budget_is_413_naming_the_setting(
    small_budget: TestClient, name: str, body: bytes, content_type: str, setting: str | None
) -> None:
    status, answer = post(small_budget, body, content_type)
    if setting is None:  # 15 cells: within budget, so it reaches validation
        assert status == 422, answer
        return
    assert status == 413, answer
    assert answer["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert f"MAX_REQUEST_{setting}" in answer["message"]


def test_cells_past_the_budget_are_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_request_cells=40)  # the warm-up example holds 27
    status, answer = post(
        client,
        b'{"dataframe_records":' + b"[%s]" % b",".join([b'{"age":1,"income":2,"x":3}'] * 15) + b"}",
        JSON,
    )
    assert status == 413, answer
    assert "MAX_REQUEST_CELLS" in answer["message"]


def test_parquet_that_decodes_past_the_body_limit_is_413(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_body_bytes=64 * 1024)
    # Distinct values: compressed small, plain-encoded (not a dictionary) in the file.
    frame = pd.DataFrame(
        [{**VALID_ROW, "employment_status": f"{i}" + "x" * 40_000} for i in range(3)]
    )
    body = parquet(frame)
    assert len(body) < 64 * 1024
    status, answer = post(client, body, PARQUET)
    assert status == 413, answer
    assert "MAX_BODY_BYTES" in answer["message"]


def test_the_signature_width_is_never_refused(make_client: Callable[..., TestClient]) -> None:
    """A column bound below the model's own width gives way to the width."""
    client = make_client(max_request_columns=1)
    status, answer = post(client, (CSV_HEADER + "\n" + CSV_LINE + "\n").encode(), CSV)
    assert status == 200, answer


@pytest.mark.parametrize(
    "convert",
    [
        lambda frame: frame.astype("category"),
        lambda frame: frame.convert_dtypes(),
        lambda frame: frame.convert_dtypes(dtype_backend="pyarrow"),
    ],
    ids=["category", "nullable", "pyarrow"],
)
def test_parquet_with_pandas_extension_dtypes_is_422_not_500(
    client: TestClient, convert: Callable[[pd.DataFrame], pd.DataFrame]
) -> None:
    """MLflow's enforcement refuses these dtypes; the answer says so, never a 500."""
    status, answer = post(client, parquet(convert(pd.DataFrame([VALID_ROW] * 3))), PARQUET)
    assert status == 422, answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"


def test_csv_integer_beyond_64_bits_is_422(client: TestClient) -> None:
    for value in (2**64, 2**70, -(2**64)):
        line = CSV_LINE.replace(",0,", f",{value},", 1)
        status, answer = post(client, (CSV_HEADER + "\n" + line + "\n").encode(), CSV)
        assert status == 422, (value, answer)
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE"


def test_every_gzip_member_is_read(client: TestClient) -> None:
    """Concatenated gzip members are one body (as gzip -d and curl read them)."""
    body = gzip_members_body()
    status, answer = post(client, body.body, CSV, **dict(body.headers))
    assert status == 200, answer
    assert len(answer["predictions"]) == 4


def test_a_gzip_bomb_after_a_first_member_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=64 * 1024)
    first = gzip.compress((CSV_HEADER + "\n" + CSV_LINE + "\n").encode())
    body = first + gzip.compress(b"0" * (1024 * 1024))
    status, answer = post(client, body, CSV, **{"Content-Encoding": "gzip"})
    assert status == 413, answer
    assert "MAX_BODY_BYTES" in answer["message"]


def test_garbage_after_a_gzip_member_is_400(client: TestClient) -> None:
    body = gzip.compress((CSV_HEADER + "\n" + CSV_LINE + "\n").encode()) + b"not gzip"
    status, answer = post(client, body, CSV, **{"Content-Encoding": "gzip"})
    assert status == 400, answer


def test_a_null_param_is_the_logged_default(client: TestClient) -> None:
    rows = {"dataframe_records": [VALID_ROW]}
    plain = client.post("/invocations", json=rows)
    nulled = client.post("/invocations", json={**rows, "params": {"low_threshold": None}})
    assert nulled.status_code == 200, nulled.text
    assert nulled.json() == plain.json()


def test_an_unsupported_content_encoding_is_not_echoed(client: TestClient) -> None:
    status, answer = post(client, b"{}", JSON, **{"Content-Encoding": "x-sentinel-7f3a"})
    assert status == 415
    assert "sentinel" not in answer["message"]


def test_parquet_text_that_a_dictionary_hides_is_413(
    make_client: Callable[..., TestClient],
) -> None:
    """The footer counts a dictionary value once; decoding copies it into every row."""
    client = make_client(max_body_bytes=64 * 1024)
    frame = pd.DataFrame([{**VALID_ROW, "employment_status": "x" * 40_000}] * 3)
    body = parquet(frame)
    assert len(body) < 64 * 1024
    status, answer = post(client, body, PARQUET)
    assert status == 413, answer
    assert "MAX_BODY_BYTES" in answer["message"]
