"""A corpus of hostile requests to POST /invocations, each carrying sentinels of its own.

Every case says which statuses are acceptable (never a 5xx). Its body is built around a
sentinel string unique to the case (in values, column names or params), and may hold
sentinel numbers too: none of them may come back in the response or reach a log line, and
since each case has its own, a leak names the case that caused it. Shared by the in-process
test and the one against the real production command.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from tests.support.demo import VALID_ROW

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"

OK = frozenset({200})
BAD_REQUEST = frozenset({400})
UNPROCESSABLE = frozenset({422})
OK_OR_UNPROCESSABLE = frozenset({200, 422})
CLIENT_ERROR = frozenset({400, 413, 415, 422})
# Bodies past MAX_BODY_BYTES / MAX_REQUEST_ROWS may be refused with 413 once limits exist.
OK_OR_TOO_LARGE = frozenset({200, 413})
TOO_LARGE = frozenset({413})
UNSUPPORTED = frozenset({415})

ROWS_LIMIT_PROBE = 10_000
LONG_STRING_CHARS = 1_000_000
DEEP_NESTING = 10_000

# Numbers that no prediction or message of ours contains by chance.
SENTINEL_INCOME = 7_364_519.8125
SENTINEL_LOAN = 4_917_263.0625
SENTINEL_CARDS = 3_141_592_653
_SENTINEL_NUMBERS = (repr(SENTINEL_INCOME), repr(SENTINEL_LOAN), str(SENTINEL_CARDS))


@dataclass(frozen=True)
class HostileCase:
    name: str
    body: bytes
    content_type: str | None
    allowed: frozenset[int]
    sentinels: tuple[str, ...]


def sentinel(name: str) -> str:
    """A string no server would produce by itself: it can only come from this case."""
    return f"SNTL{zlib.crc32(name.encode()):08x}"


def _case(
    name: str,
    content_type: str | None,
    allowed: frozenset[int],
    build: Callable[[str], bytes],
) -> HostileCase:
    """Build the body around the case's sentinel; the sentinels are whatever it holds."""
    mark = sentinel(name)
    body = build(mark)
    # As JSON bytes are read: UTF-16 and UTF-32 bodies hold their sentinels encoded.
    text = body.decode(json.detect_encoding(body), "replace")
    held = tuple(s for s in (mark, *_SENTINEL_NUMBERS) if s.encode() in body or s in text)
    return HostileCase(name, body, content_type, allowed, held)


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _records(*rows: dict[str, object]) -> bytes:
    return _dumps({"dataframe_records": list(rows)})


def _row(**changes: object) -> dict[str, object]:
    """The valid row with a sentinel loan amount (so an echo of the row is caught)."""
    return {**VALID_ROW, "loan_amount": SENTINEL_LOAN, **changes}


def _literal_cases() -> list[HostileCase]:
    """JSON the standard forbids or cannot represent, and integers past int64."""

    def with_literal(column: str, literal: str) -> Callable[[str], bytes]:
        def build(mark: str) -> bytes:
            body = _records(_row(employment_status=mark, **{column: 0}))
            replaced = body.replace(f'"{column}": 0'.encode(), f'"{column}": {literal}'.encode())
            assert replaced != body
            return replaced

        return build

    # NaN and Infinity are not JSON, but Python clients (MLflow's own) send them and
    # MLflow's server takes them: NaN is a missing value (income is required), Infinity
    # is what was sent. Numbers no double or int64 holds would be rounded: refused.
    accepted = [("infinity-literal", "Infinity"), ("minus-infinity-literal", "-Infinity")]
    malformed = [
        ("float-overflow-1e400", "1e400"),
        ("integer-literal-10-pow-400", "1" + "0" * 400),
    ]
    # A long column must not take a value int64 cannot hold: casting it overflows silently.
    out_of_range = [
        ("long-column-2-pow-64", str(2**64)),
        ("long-column-2-pow-63", str(2**63)),
        ("long-column-below-int64-min", str(-(2**63) - 1)),
        ("long-column-1e300", "1e300"),
    ]
    return [
        _case("nan-literal", JSON, UNPROCESSABLE, with_literal("income", "NaN")),
        *(_case(name, JSON, OK, with_literal("income", lit)) for name, lit in accepted),
        *(_case(name, JSON, BAD_REQUEST, with_literal("income", lit)) for name, lit in malformed),
    ] + [
        _case(name, JSON, CLIENT_ERROR, with_literal("age", literal))
        for name, literal in out_of_range
    ]


def _wrong_type_cases() -> list[HostileCase]:
    """Every column with a value of every wrong kind, a sentinel inside where possible."""
    cases = []
    for column, value in VALID_ROW.items():
        wrong: dict[str, Callable[[str], object]] = {
            "object": lambda mark: {"nested": mark},
            "array": lambda mark: [mark, SENTINEL_INCOME],
            "null": lambda mark: None,
            "boolean": lambda mark: True,
        }
        if isinstance(value, str):
            wrong["number"] = lambda mark: SENTINEL_INCOME
        else:
            wrong["text"] = lambda mark: mark
        if isinstance(value, int):
            wrong["decimal"] = lambda mark: SENTINEL_INCOME
        for kind, make in wrong.items():

            def build(
                mark: str, column: str = column, make: Callable[[str], object] = make
            ) -> bytes:
                return _records(_row(**{column: make(mark)}))

            cases.append(_case(f"wrong-type-{column}-{kind}", JSON, UNPROCESSABLE, build))
    return cases


def _shape_cases() -> list[HostileCase]:
    def missing_age(mark: str) -> bytes:
        row = _row(employment_status=mark)
        del row["age"]
        return _records(row)

    def duplicate_keys_in_record(mark: str) -> bytes:
        return (
            b'{"dataframe_records": [{"age": "'
            + mark.encode()
            + b'", '
            + _dumps(_row())[1:]
            + b"]}"
        )

    def duplicate_input_field(mark: str) -> bytes:
        first = b'{"dataframe_records": [{"age": "' + mark.encode() + b'"}], '
        return first + b'"dataframe_records": ' + _dumps([_row()]) + b"}"

    split_columns = list(VALID_ROW)
    shapes: list[tuple[str, frozenset[int], Callable[[str], bytes]]] = [
        ("empty-body", BAD_REQUEST, lambda mark: b""),
        ("null-body", BAD_REQUEST, lambda mark: b"null"),
        ("empty-object", BAD_REQUEST, lambda mark: b"{}"),
        ("empty-array", BAD_REQUEST, lambda mark: b"[]"),
        ("string-body", BAD_REQUEST, _dumps),
        ("number-body", BAD_REQUEST, lambda mark: repr(SENTINEL_INCOME).encode()),
        ("array-of-records-without-field", BAD_REQUEST, lambda mark: _dumps([_row(x=mark)])),
        (
            "two-input-fields",
            BAD_REQUEST,
            lambda mark: _dumps({"dataframe_records": [_row()], "instances": [mark]}),
        ),
        ("unknown-field-only", BAD_REQUEST, lambda mark: _dumps({mark: [_row()]})),
        ("missing-column", UNPROCESSABLE, missing_age),
        ("extra-column-value", OK_OR_UNPROCESSABLE, lambda mark: _records(_row(nickname=mark))),
        ("extra-column-name", OK_OR_UNPROCESSABLE, lambda mark: _records(_row(**{mark: 1}))),
        ("duplicate-keys-in-record", frozenset({200, 400, 422}), duplicate_keys_in_record),
        ("duplicate-input-field", frozenset({200, 400, 422}), duplicate_input_field),
        ("zero-rows-records", BAD_REQUEST, lambda mark: _records()),
        (
            "zero-rows-split",
            BAD_REQUEST,
            lambda mark: _dumps({"dataframe_split": {"columns": split_columns, "data": []}}),
        ),
        (
            "split-rows-longer-than-columns",
            CLIENT_ERROR,
            lambda mark: _dumps(
                {
                    "dataframe_split": {
                        "columns": split_columns,
                        "data": [[*_row().values(), mark]],
                    }
                }
            ),
        ),
        (
            "split-columns-not-strings",
            CLIENT_ERROR,
            lambda mark: _dumps({"dataframe_split": {"columns": [{"x": mark}], "data": [[1]]}}),
        ),
        (
            "instances-of-scalars",
            CLIENT_ERROR,
            lambda mark: _dumps({"instances": [mark, SENTINEL_INCOME]}),
        ),
        (
            "inputs-nested-object",
            CLIENT_ERROR,
            lambda mark: _dumps({"inputs": {"age": {"deep": mark}}}),
        ),
        (
            "params-not-an-object",
            BAD_REQUEST,
            lambda mark: _dumps({"dataframe_records": [_row()], "params": [mark]}),
        ),
        (
            "params-unknown-name",
            OK_OR_UNPROCESSABLE,
            lambda mark: _dumps({"dataframe_records": [_row()], "params": {mark: 1}}),
        ),
        (
            "params-unknown-value",
            OK_OR_UNPROCESSABLE,
            lambda mark: _dumps({"dataframe_records": [_row()], "params": {"p": mark}}),
        ),
        (
            "integer-sentinel-in-long-column",
            OK_OR_UNPROCESSABLE,
            lambda mark: _records(_row(num_credit_cards=SENTINEL_CARDS, employment_status=mark)),
        ),
    ]
    return [_case(name, JSON, allowed, build) for name, allowed, build in shapes]


def _encoding_cases() -> list[HostileCase]:
    def valid(mark: str) -> bytes:
        return _records(_row(employment_status=mark))

    def encoded(encoding: str) -> Callable[[str], bytes]:
        return lambda mark: valid(mark).decode().encode(encoding)

    # JSON in UTF-16 or UTF-32 (byte order mark or not) is read as MLflow's server reads
    # it (json.loads on bytes); a charset parameter other than UTF-8 is refused as there.
    return [
        _case(
            "invalid-utf8-json",
            JSON,
            BAD_REQUEST,
            lambda mark: valid(mark).replace(mark.encode(), mark.encode() + b"\xff\xfe\xc3\x28"),
        ),
        _case("utf16-json", JSON, OK, encoded("utf-16")),
        _case("utf16-le-json-without-bom", JSON, OK, encoded("utf-16-le")),
        _case("utf32-json", JSON, OK, encoded("utf-32")),
        _case("utf8-bom-json", JSON, OK, encoded("utf-8-sig")),
        _case(
            "utf16-json-cut-mid-character", JSON, BAD_REQUEST, lambda m: encoded("utf-16")(m)[:-1]
        ),
        _case("utf16-charset", JSON + "; charset=utf-16", UNSUPPORTED, encoded("utf-16")),
        _case(
            "nul-byte-json", JSON, BAD_REQUEST, lambda mark: valid(mark).replace(b"{", b"{\0", 1)
        ),
        _case(
            "invalid-utf8-csv",
            CSV,
            BAD_REQUEST,
            lambda mark: f"age,employment_status\n1,{mark}".encode() + b"\xff\xfe\n",
        ),
    ]


def _nesting_cases() -> list[HostileCase]:
    def nested_arrays(depth: int, inner: bytes) -> bytes:
        return b"[" * depth + inner + b"]" * depth

    def in_value(mark: str) -> bytes:
        body = _records(_row(employment_status="PLACEHOLDER"))
        return body.replace(b'"PLACEHOLDER"', nested_arrays(DEEP_NESTING, _dumps(mark)))

    def as_records(mark: str) -> bytes:
        body = _dumps({"dataframe_records": "PLACEHOLDER", "x": mark})
        return body.replace(b'"PLACEHOLDER"', nested_arrays(2000, b""))

    return [
        _case("nested-arrays-10000", JSON, BAD_REQUEST, lambda m: nested_arrays(DEEP_NESTING, b"")),
        _case(
            "nested-objects-10000",
            JSON,
            BAD_REQUEST,
            lambda mark: b'{"a":' * DEEP_NESTING + _dumps(mark) + b"}" * DEEP_NESTING,
        ),
        _case("nested-arrays-in-a-value", JSON, BAD_REQUEST, in_value),
        _case("nested-arrays-as-records", JSON, BAD_REQUEST, as_records),
    ]


def _content_type_cases() -> list[HostileCase]:
    def body(mark: str) -> bytes:
        return _records(_row(employment_status=mark))

    unsupported = [
        ("missing", None),
        ("empty", ""),
        ("text-plain", "text/plain"),
        ("xml", "application/xml"),
        ("form", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=xyz"),
        ("latin1-charset", "application/json; charset=latin-1"),
        ("unknown-parameter", "application/json; profile=x"),
        ("garbage", ";;;==="),
    ]
    return [
        _case(f"content-type-{label}", content_type, UNSUPPORTED, body)
        for label, content_type in unsupported
    ] + [
        # JSON sent as CSV parses as a CSV of odd columns: an error, never a 5xx.
        _case("json-sent-as-csv", CSV, CLIENT_ERROR, body),
        _case("csv-sent-as-json", JSON, BAD_REQUEST, lambda mark: f"age,x\n1,{mark}\n".encode()),
        _case("upper-case-json-type", "APPLICATION/JSON", OK, body),
    ]


def _size_cases() -> list[HostileCase]:
    many = [_row(age=20 + index % 60) for index in range(ROWS_LIMIT_PROBE)]
    return [
        _case("rows-10000", JSON, OK_OR_TOO_LARGE, lambda mark: _records(*many)),
        _case("rows-10001", JSON, OK_OR_TOO_LARGE, lambda mark: _records(*many, _row())),
        _case(
            "one-megabyte-string-value",
            JSON,
            frozenset({200, 413, 422}),
            lambda mark: _records(_row(employment_status=mark + "A" * LONG_STRING_CHARS)),
        ),
        _case(
            "one-megabyte-column-name",
            JSON,
            frozenset({200, 413, 422}),
            lambda mark: _records(_row(**{mark + "A" * LONG_STRING_CHARS: 1})),
        ),
    ]


def _unicode_cases() -> list[HostileCase]:
    names = ["年齢", "收入🙂", "e\u0301mployment", "\u202eRTL", "\u0000nul", "age\u200b"]
    return [
        _case(
            "unicode-column-names-only",
            JSON,
            UNPROCESSABLE,
            lambda mark: _records({f"{name}{mark}": i for i, name in enumerate(names)}),
        ),
        _case(
            "unicode-extra-columns",
            JSON,
            OK_OR_UNPROCESSABLE,
            lambda mark: _records(_row(**{f"{name}{mark}": 1 for name in names})),
        ),
        _case(
            "unicode-values",
            JSON,
            OK_OR_UNPROCESSABLE,
            lambda mark: _records(
                _row(employment_status=f"émployé🙂{mark}\u202e", home_ownership="\u0000")
            ),
        ),
    ]


def _csv_cases() -> list[HostileCase]:
    header = ",".join(VALID_ROW)

    def line(**changes: object) -> str:
        return ",".join(str(value) for value in _row(**changes).values())

    def with_formula(formula: str) -> Callable[[str], bytes]:
        return lambda mark: f"{header}\n{line(employment_status=formula + mark)}\n".encode()

    formulas = [
        ("formula-equals", "=cmd|' /C calc'!A0"),
        ("formula-plus", "+1+1"),
        ("formula-at", "@SUM(1+1)"),
        ("formula-hyperlink", '"=HYPERLINK(""http://127.0.0.1/"",""x"")"'),
        ("formula-tab", "\t=1+1"),
    ]
    formula_cases = [
        _case(f"csv-{name}", CSV, OK_OR_UNPROCESSABLE, with_formula(formula))
        for name, formula in formulas
    ]
    return [
        *formula_cases,
        _case("csv-header-only", CSV, BAD_REQUEST, lambda mark: f"{header}\n".encode()),
        _case("csv-empty", CSV, BAD_REQUEST, lambda mark: b""),
        _case("csv-extra-field", CSV, CLIENT_ERROR, lambda m: f"{header}\n{line()},{m}\n".encode()),
        _case(
            "csv-text-in-number-column",
            CSV,
            UNPROCESSABLE,
            lambda mark: f"{header}\n{line(age=mark)}\n".encode(),
        ),
        _case(
            "csv-unterminated-quote",
            CSV,
            CLIENT_ERROR,
            lambda mark: f"{header}\n{line(employment_status=chr(34) + mark)}\n".encode(),
        ),
        _case(
            "csv-decimal-in-long-column",
            CSV,
            UNPROCESSABLE,
            lambda mark: f"{header}\n{line(num_late_payments=SENTINEL_INCOME)}\n".encode(),
        ),
        _case(
            "csv-nan-and-inf",
            CSV,
            OK_OR_UNPROCESSABLE,
            lambda mark: f"{header}\n{line(income='nan', loan_amount='inf')}\n".encode(),
        ),
    ]


def _budget_cases() -> list[HostileCase]:
    """Small bodies asking for large tables: refused before a table is built
    (app.protocol.budget)."""
    width = 100_000

    def wide_instances(mark: str) -> bytes:
        return b'{"instances":[[' + b",".join([b"0"] * width) + b']],"x":"' + mark.encode() + b'"}'

    def one_cell_rows(head: bytes, tail: bytes) -> Callable[[str], bytes]:
        """A million one-cell rows: refused from the bytes, before any row is built."""
        rows = b",".join([b"[0]"] * 1_000_000)
        return lambda mark: b'{"x":"' + mark.encode() + b'",' + head + rows + tail

    def parquet(frame: pd.DataFrame) -> bytes:
        return frame.to_parquet(compression="zstd", index=False)

    def long_overflow(mark: str) -> bytes:
        row = _row(employment_status=mark, num_late_payments=2**70)
        return (",".join(row) + "\n" + ",".join(map(str, row.values())) + "\n").encode()

    return [
        _case("budget-wide-instances", JSON, TOO_LARGE, wide_instances),
        _case("budget-million-rows", JSON, TOO_LARGE, one_cell_rows(b'"instances":[', b"]}")),
        _case(
            "budget-million-rows-split",
            JSON,
            TOO_LARGE,
            one_cell_rows(b'"dataframe_split":{"columns":["age"],"data":[', b"]}}"),
        ),
        _case(
            "budget-million-rows-by-name",
            JSON,
            TOO_LARGE,
            one_cell_rows(b'"inputs":{"age":[', b"]}}"),
        ),
        _case(
            "budget-million-rows-utf16",
            JSON,
            TOO_LARGE,
            lambda mark: one_cell_rows(b'"instances":[', b"]}")(mark).decode().encode("utf-16"),
        ),
        _case(
            "budget-wide-records",
            JSON,
            TOO_LARGE,
            lambda mark: _records({f"{mark}{i}": 0 for i in range(10_000)}),
        ),
        _case(
            "budget-wide-csv-header",
            CSV,
            TOO_LARGE,
            lambda mark: (",".join(f"{mark}{i}" for i in range(width)) + "\n").encode(),
        ),
        _case("budget-csv-long-beyond-64-bits", CSV, UNPROCESSABLE, long_overflow),
        _case(
            "budget-parquet-many-rows",
            PARQUET,
            TOO_LARGE,
            lambda mark: parquet(pd.DataFrame([_row(employment_status=mark)] * 200_000)),
        ),
        _case(
            "budget-parquet-category-columns",
            PARQUET,
            UNPROCESSABLE,
            lambda mark: parquet(
                pd.DataFrame([_row(employment_status=mark)] * 3).astype("category")
            ),
        ),
        _case("parquet-garbage", PARQUET, BAD_REQUEST, lambda mark: b"PAR1" + mark.encode()),
    ]


def hostile_cases() -> list[HostileCase]:
    cases = [
        *_budget_cases(),
        *_literal_cases(),
        *_wrong_type_cases(),
        *_shape_cases(),
        *_encoding_cases(),
        *_nesting_cases(),
        *_content_type_cases(),
        *_size_cases(),
        *_unicode_cases(),
        *_csv_cases(),
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names are test ids: keep them unique"
    marks = [sentinel(name) for name in names]
    assert len(marks) == len(set(marks)), "each case needs a sentinel of its own"
    return cases
