"""The outline read from a JSON body's bytes (app.protocol.json_outline) never counts more than the
parsed outline, whatever the spacing, escapes, encoding or window boundaries: the budget
it feeds refuses a million rows before building one, and never a body the parse admits."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import RequestTooLargeError
from app.protocol import json_outline, parsing
from app.protocol.budget import RequestBudget, _bytes_outline, _json_outline
from app.protocol.json_outline import Member, object_members

# Text that JSON escapes or that looks like structure inside strings.
_TEXT = st.text(alphabet='ab[]{},:"\\ \n\u00e9\U0001f642', max_size=6)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_KEYS = st.one_of(_TEXT, st.sampled_from(["columns", "data", "index", "instances", "inputs"]))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=40,
)
_SPLIT = st.fixed_dictionaries(
    {"columns": st.lists(_TEXT, max_size=4), "data": st.lists(st.lists(_SCALARS, max_size=4))}
)
_DOCUMENTS = st.dictionaries(_KEYS, st.one_of(_VALUES, _SPLIT), max_size=5)
_DUMPS: list[Callable[[Any], str]] = [
    lambda value: json.dumps(value),
    lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False),
    lambda value: json.dumps(value, indent=2),
    lambda value: " " + json.dumps(value, separators=(" , ", " : ")) + "\n",
]


@pytest.fixture
def window_bytes() -> Iterator[Callable[[int], None]]:
    """Set the scanner's window size for one test (hypothesis reruns the test body)."""
    saved = json_outline._WINDOW_BYTES

    def set_size(size: int) -> None:
        json_outline._WINDOW_BYTES = size

    yield set_size
    json_outline._WINDOW_BYTES = saved


def _widths(value: Any) -> int:
    return sum(len(item) if isinstance(item, list | dict) else 1 for item in value)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=_DOCUMENTS,
    dump=st.sampled_from(_DUMPS),
    window=st.sampled_from([1, 2, 3, 7, 64 * 1024]),
)
def test_byte_counts_never_exceed_the_parsed_ones(
    window_bytes: Callable[[int], None],
    document: dict[str, Any],
    dump: Callable[[Any], str],
    window: int,
) -> None:
    window_bytes(window)
    body = dump(document).encode()
    members = object_members(body)
    if members is None:  # only a key holding an escaped quote is left to the parser
        assert any('"' in key for key in document)
        return
    assert list(members) == list(document)
    for key, value in document.items():
        member = members[key]
        if isinstance(value, list | dict):
            assert member.kind == ("array" if isinstance(value, list) else "object")
            assert member.elements == (len(value) if len(value) > 1 else 0)
            children = value if isinstance(value, list) else list(value.values())
            assert member.element_widths <= _widths(children)
        else:
            assert member.kind == "scalar"
        rows, _, cells = _json_outline(value)
        byte_rows, byte_cells = _bytes_outline(body, member)
        assert byte_rows <= rows
        assert byte_cells <= cells


def test_the_last_of_a_repeated_key_wins_as_in_the_parse() -> None:
    members = object_members(b'{"instances": [1, 2, 3], "instances": [1, 2]}')
    assert members is not None
    assert members["instances"].elements == 2


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"text"', b"", b'{"a": [1, 2', b'{"a\\"b": [1, 2]}'],
    ids=["array", "string", "empty", "unclosed", "escaped-quote-in-key"],
)
def test_what_it_cannot_read_for_sure_is_left_to_the_parser(body: bytes) -> None:
    assert object_members(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[0], [0], [0]]}',
        b'{"dataframe_split": {"columns": ["a"], "data": [[0], [0], [0]]}}',
        b'{"inputs": {"a": [0, 0, 0]}}',
        b'{"data": [{"a": 0}, {"a": 0}, {"a": 0}]}',
        b'{"dataframe_records": [{"a": 0}, {"a": 0}, {"a": 0}], "params": {"p": [1, 2, 3, 4]}}',
    ],
    ids=["instances", "split", "by-name", "data-alias", "records-and-params"],
)
def test_rows_are_bounded_from_the_bytes_exactly_at_the_limit(body: bytes) -> None:
    within = RequestBudget(max_rows=3, max_columns=10, max_cells=100, max_decoded_bytes=1 << 20)
    within.check_json_bytes(body, parsing._bounded_field)
    beyond = RequestBudget(max_rows=2, max_columns=10, max_cells=100, max_decoded_bytes=1 << 20)
    with pytest.raises(RequestTooLargeError, match="MAX_REQUEST_ROWS"):
        beyond.check_json_bytes(body, parsing._bounded_field)


@pytest.mark.parametrize(
    "body",
    [
        b'{"messages": [[0], [0], [0]]}',
        b'{"instances": [[0], [0], [0]], "inputs": [0]}',
        b'{"x": [[0], [0], [0]], "inputs": [0]}',
    ],
    ids=["unwrapped-llm", "two-input-fields", "rows-in-an-ignored-field"],
)
def test_only_the_input_field_is_bounded(body: bytes) -> None:
    """As after the parse: an LLM body is no table, two input fields are a 400, and a
    field MLflow ignores may hold what it likes."""
    budget = RequestBudget(max_rows=2, max_columns=10, max_cells=100, max_decoded_bytes=1 << 20)
    budget.check_json_bytes(body, parsing._bounded_field)


def test_cells_are_bounded_from_the_bytes() -> None:
    body = b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4]]}'
    budget = RequestBudget(max_rows=10, max_columns=10, max_cells=5, max_decoded_bytes=1 << 20)
    with pytest.raises(RequestTooLargeError, match="MAX_REQUEST_CELLS"):
        budget.check_json_bytes(body, parsing._bounded_field)


MILLION_ROWS = b",".join([b"[0]"] * 1_000_000)


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [' + MILLION_ROWS + b"]}",
        b'{"dataframe_split": {"columns": ["age"], "data": [' + MILLION_ROWS + b"]}}",
        b'{"inputs": {"age": [' + MILLION_ROWS + b"]}}",
        (b'{"instances": [' + MILLION_ROWS + b"]}").decode().encode("utf-16"),
    ],
    ids=["instances", "split", "by-name", "utf-16"],
)
def test_a_million_one_cell_rows_are_refused_before_the_parse(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    def no_parse(body: bytes) -> Any:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(parsing, "_load_json", no_parse)
    response = client.post(
        "/invocations", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "MAX_REQUEST_ROWS" in response.json()["message"]


def test_members_report_kinds_and_where_values_open() -> None:
    body = b'{"a": 1, "b": [1, 2], "c": {"d": 1, "e": 2}}'
    assert object_members(body) == {
        "a": Member("scalar", 4, 0, 0),
        "b": Member("array", 14, 2, 0),
        "c": Member("object", 27, 2, 0),
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [' + MILLION_ROWS + b"]}",
        b'{"instances": ["' + b"\\" * 8_000_000 + b'"]}',
        b'{"instances": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    ],
    ids=["million-rows", "eight-million-backslashes", "deep"],
)
def test_reading_costs_a_window_not_the_body(body: bytes) -> None:
    tracemalloc.start()
    try:
        object_members(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
