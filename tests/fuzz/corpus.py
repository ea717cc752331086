"""A corpus of hostile requests to POST /invocations, each carrying sentinels of its own.

Every case says which statuses are acceptable (never a 5xx) and which unique sentinel
strings or numbers it carries in its values, column names or params: none of them may
come back in the response or reach a log line. Shared by the in-process test and the
one against the real production command.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from tests.conftest import VALID_ROW

JSON = "application/json"
CSV = "text/csv"

OK = frozenset({200})
BAD_REQUEST = frozenset({400})
UNPROCESSABLE = frozenset({422})
CLIENT_ERROR = frozenset({400, 413, 415, 422})
# Bodies past MAX_BODY_BYTES / MAX_REQUEST_ROWS may be refused with 413 once limits exist.
OK_OR_TOO_LARGE = frozenset({200, 413})
UNSUPPORTED = frozenset({415})

ROWS_LIMIT_PROBE = 10_000
LONG_STRING_CHARS = 1_000_000
DEEP_NESTING = 10_000


@dataclass(frozen=True)
class HostileCase:
    name: str
    body: bytes
    content_type: str | None
    allowed: frozenset[int]
    sentinels: tuple[str, ...] = field(default=())


def sentinel(name: str) -> str:
    """A string no server would produce by itself: it can only come from the request."""
    return f"SNTL{zlib.crc32(name.encode()):08x}x{name.replace('-', '')[:12]}"


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _records(*rows: dict[str, object]) -> bytes:
    return _dumps({"dataframe_records": list(rows)})


def _row(**changes: object) -> dict[str, object]:
    return {**VALID_ROW, **changes}


# Numbers that no prediction or message of ours contains by chance.
SENTINEL_INCOME = 7_364_519.8125
SENTINEL_LOAN = 4_917_263.0625
SENTINEL_CARDS = 3_141_592_653


def _literal_cases() -> list[HostileCase]:
    """JSON the standard forbids or cannot represent: NaN, Infinity, 1e400, 10**400."""
    mark = sentinel("literal")
    base = json.dumps({"dataframe_records": [_row(employment_status=mark, income=0.0)]})
    cases = []
    for name, literal in [
        ("nan-literal", "NaN"),
        ("infinity-literal", "Infinity"),
        ("minus-infinity-literal", "-Infinity"),
        ("float-overflow-1e400", "1e400"),
        ("integer-literal-10-pow-400", "1" + "0" * 400),
    ]:
        body = base.replace('"income": 0.0', f'"income": {literal}')
        assert body != base
        cases.append(HostileCase(name, body.encode(), JSON, BAD_REQUEST, (mark,)))
    for name, literal in [
        ("long-column-2-pow-64", str(2**64)),
        ("long-column-2-pow-63", str(2**63)),
        ("long-column-below-int64-min", str(-(2**63) - 1)),
        ("long-column-1e300", "1e300"),
    ]:
        mark = sentinel(name)
        body = json.dumps({"dataframe_records": [_row(employment_status=mark, age=35)]})
        body = body.replace('"age": 35', f'"age": {literal}')
        cases.append(HostileCase(name, body.encode(), JSON, CLIENT_ERROR, (mark,)))
    return cases


def _wrong_type_cases() -> list[HostileCase]:
    """Every column with a value of every wrong kind, a sentinel inside where possible."""
    cases = []
    for column, value in VALID_ROW.items():
        mark = sentinel(f"type-{column}")
        wrong_values: dict[str, object] = {
            "object": {"nested": mark},
            "array": [mark, SENTINEL_INCOME],
            "null": None,
            "boolean": True,
        }
        if isinstance(value, str):
            wrong_values["number"] = SENTINEL_INCOME
        else:
            wrong_values["text"] = mark
        if isinstance(value, int):
            wrong_values["decimal"] = SENTINEL_INCOME
        for kind, wrong in wrong_values.items():
            sentinels = [mark] if kind in {"text", "object", "array"} else []
            if kind in {"number", "decimal", "array"}:
                sentinels.append(repr(SENTINEL_INCOME))
            # Elsewhere in the row, so an echo of the whole row is caught too.
            row = _row(**{column: wrong})
            if column != "loan_amount":
                row["loan_amount"] = SENTINEL_LOAN
                sentinels.append(repr(SENTINEL_LOAN))
            cases.append(
                HostileCase(
                    f"wrong-type-{column}-{kind}",
                    _records(row),
                    JSON,
                    UNPROCESSABLE,
                    tuple(sentinels),
                )
            )
    return cases


def _shape_cases() -> list[HostileCase]:
    mark = sentinel("shape")
    row = _row(loan_amount=SENTINEL_LOAN)
    missing = {k: v for k, v in row.items() if k != "age"}
    loan = repr(SENTINEL_LOAN)
    return [
        HostileCase("empty-body", b"", JSON, BAD_REQUEST),
        HostileCase("null-body", b"null", JSON, BAD_REQUEST),
        HostileCase("empty-object", b"{}", JSON, BAD_REQUEST),
        HostileCase("empty-array", b"[]", JSON, BAD_REQUEST),
        HostileCase("string-body", _dumps(mark), JSON, BAD_REQUEST, (mark,)),
        HostileCase("number-body", b"7364519.8125", JSON, BAD_REQUEST, (repr(SENTINEL_INCOME),)),
        HostileCase("array-of-records-without-field", _dumps([row]), JSON, BAD_REQUEST, (loan,)),
        HostileCase(
            "two-input-fields",
            _dumps({"dataframe_records": [row], "instances": [row]}),
            JSON,
            BAD_REQUEST,
            (loan,),
        ),
        HostileCase("unknown-field-only", _dumps({mark: [row]}), JSON, BAD_REQUEST, (mark, loan)),
        HostileCase("missing-column", _records(missing), JSON, UNPROCESSABLE, (loan,)),
        HostileCase(
            "extra-column",
            _records({**row, "nickname": mark}),
            JSON,
            frozenset({200, 422}),
            (mark, loan),
        ),
        HostileCase(
            "duplicate-keys-in-record",
            b'{"dataframe_records": [{"age": "' + mark.encode() + b'", ' + _dumps(row)[1:] + b"]}",
            JSON,
            frozenset({200, 400, 422}),
            (mark, loan),
        ),
        HostileCase(
            "duplicate-input-field",
            b'{"dataframe_records": [{"age": "'
            + mark.encode()
            + b'"}], "dataframe_records": '
            + _dumps([row])
            + b"}",
            JSON,
            frozenset({200, 400, 422}),
            (mark, loan),
        ),
        HostileCase("zero-rows-records", _records(), JSON, BAD_REQUEST),
        HostileCase(
            "zero-rows-split",
            _dumps({"dataframe_split": {"columns": list(VALID_ROW), "data": []}}),
            JSON,
            BAD_REQUEST,
        ),
        HostileCase(
            "split-rows-longer-than-columns",
            _dumps(
                {
                    "dataframe_split": {
                        "columns": list(VALID_ROW),
                        "data": [[*VALID_ROW.values(), mark]],
                    }
                }
            ),
            JSON,
            CLIENT_ERROR,
            (mark,),
        ),
        HostileCase(
            "split-columns-not-strings",
            _dumps({"dataframe_split": {"columns": [{"x": mark}], "data": [[1]]}}),
            JSON,
            CLIENT_ERROR,
            (mark,),
        ),
        HostileCase(
            "instances-of-scalars",
            _dumps({"instances": [mark, SENTINEL_INCOME]}),
            JSON,
            CLIENT_ERROR,
            (mark, repr(SENTINEL_INCOME)),
        ),
        HostileCase(
            "inputs-nested-object",
            _dumps({"inputs": {"age": {"deep": mark}}}),
            JSON,
            CLIENT_ERROR,
            (mark,),
        ),
        HostileCase(
            "params-not-an-object",
            _dumps({"dataframe_records": [row], "params": [mark]}),
            JSON,
            BAD_REQUEST,
            (mark, loan),
        ),
        HostileCase(
            "params-with-unknown-keys",
            _dumps({"dataframe_records": [row], "params": {mark: mark}}),
            JSON,
            frozenset({200, 422}),
            (mark, loan),
        ),
        HostileCase(
            "integer-sentinel-in-long-column",
            _records(_row(num_credit_cards=SENTINEL_CARDS)),
            JSON,
            frozenset({200, 422}),
            (str(SENTINEL_CARDS),),
        ),
    ]


def _encoding_cases() -> list[HostileCase]:
    mark = sentinel("encoding")
    valid = _records(_row(employment_status=mark))
    broken = valid.replace(mark.encode(), mark.encode() + b"\xff\xfe\xc3\x28")
    return [
        HostileCase("invalid-utf8-json", broken, JSON, BAD_REQUEST, (mark,)),
        HostileCase("utf16-json", valid.decode().encode("utf-16"), JSON, BAD_REQUEST),
        HostileCase("nul-bytes-json", valid.replace(b"{", b"{\x00", 1), JSON, BAD_REQUEST, (mark,)),
        HostileCase(
            "invalid-utf8-csv",
            f"age,employment_status\n1,{mark}".encode() + b"\xff\xfe\n",
            CSV,
            BAD_REQUEST,
            (mark,),
        ),
    ]


def _nesting_cases() -> list[HostileCase]:
    mark = sentinel("nesting")
    arrays = b"[" * DEEP_NESTING + b"]" * DEEP_NESTING
    objects = b'{"a":' * DEEP_NESTING + b"1" + b"}" * DEEP_NESTING
    in_value = _dumps({"dataframe_records": [_row(employment_status="PLACEHOLDER")]}).replace(
        b'"PLACEHOLDER"', b"[" * DEEP_NESTING + _dumps(mark) + b"]" * DEEP_NESTING
    )
    in_records = _dumps({"dataframe_records": "PLACEHOLDER", "x": mark}).replace(
        b'"PLACEHOLDER"', b"[" * 2000 + b"]" * 2000
    )
    return [
        HostileCase("nested-arrays-10000", arrays, JSON, BAD_REQUEST),
        HostileCase("nested-objects-10000", objects, JSON, BAD_REQUEST),
        HostileCase("nested-arrays-in-a-value", in_value, JSON, BAD_REQUEST, (mark,)),
        HostileCase("nested-arrays-as-records", in_records, JSON, BAD_REQUEST, (mark,)),
    ]


def _content_type_cases() -> list[HostileCase]:
    mark = sentinel("content-type")
    body = _records(_row(employment_status=mark))
    return [
        HostileCase(f"content-type-{label}", body, content_type, UNSUPPORTED, (mark,))
        for label, content_type in [
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
    ] + [
        # JSON sent as CSV: parsed as a CSV of one odd column, never a 5xx.
        HostileCase("json-sent-as-csv", body, CSV, CLIENT_ERROR, (mark,)),
        HostileCase("csv-sent-as-json", b"age,income\n1,2\n", JSON, BAD_REQUEST),
        HostileCase("upper-case-json-type", body, "APPLICATION/JSON", OK, (mark,)),
    ]


def _size_cases() -> list[HostileCase]:
    mark = sentinel("size")
    long_value = mark + "A" * LONG_STRING_CHARS
    many = [_row(age=20 + index % 60) for index in range(ROWS_LIMIT_PROBE)]
    return [
        HostileCase("rows-10000", _records(*many), JSON, OK_OR_TOO_LARGE),
        HostileCase("rows-10001", _records(*many, VALID_ROW), JSON, OK_OR_TOO_LARGE),
        HostileCase(
            "one-megabyte-string-value",
            _records(_row(employment_status=long_value)),
            JSON,
            frozenset({200, 413, 422}),
            (mark,),
        ),
        HostileCase(
            "one-megabyte-column-name",
            _records({**VALID_ROW, long_value: 1}),
            JSON,
            frozenset({200, 413, 422}),
            (mark,),
        ),
    ]


def _unicode_cases() -> list[HostileCase]:
    mark = sentinel("unicode")
    names = ["年齢", "收入🙂", "e\u0301mployment", "\u202eRTL", "\u0000nul", "age\u200b"]
    return [
        HostileCase(
            "unicode-column-names-only",
            _records({f"{name}{mark}": index for index, name in enumerate(names)}),
            JSON,
            UNPROCESSABLE,
            (mark,),
        ),
        HostileCase(
            "unicode-extra-columns",
            _records({**VALID_ROW, **{f"{name}{mark}": mark for name in names}}),
            JSON,
            frozenset({200, 422}),
            (mark,),
        ),
        HostileCase(
            "unicode-values",
            _records(_row(employment_status=f"émployé🙂{mark}\u202e", home_ownership="\u0000")),
            JSON,
            frozenset({200, 422}),
            (mark,),
        ),
    ]


def _csv_cases() -> list[HostileCase]:
    header = ",".join(VALID_ROW)

    def line(**changes: object) -> str:
        return ",".join(str(value) for value in _row(**changes).values())

    cases = []
    for name, payload in [
        ("formula-equals", "=cmd|' /C calc'!A0"),
        ("formula-plus", "+1+1"),
        ("formula-at", "@SUM(1+1)"),
        ("formula-hyperlink", '"=HYPERLINK(""http://127.0.0.1/"",""x"")"'),
        ("formula-tab", "\t=1+1"),
    ]:
        mark = sentinel(f"csv-{name}")
        body = f"{header}\n{line(employment_status=payload + mark)}\n"
        cases.append(HostileCase(f"csv-{name}", body.encode(), CSV, frozenset({200, 422}), (mark,)))
    mark = sentinel("csv-shape")
    cases += [
        HostileCase("csv-header-only", f"{header}\n".encode(), CSV, BAD_REQUEST),
        HostileCase("csv-empty", b"", CSV, BAD_REQUEST),
        HostileCase(
            "csv-extra-field",
            f"{header}\n{line()},{mark}\n".encode(),
            CSV,
            CLIENT_ERROR,
            (mark,),
        ),
        HostileCase(
            "csv-text-in-number-column",
            f"{header}\n{line(age=mark)}\n".encode(),
            CSV,
            UNPROCESSABLE,
            (mark,),
        ),
        HostileCase(
            "csv-unterminated-quote",
            f"{header}\n{line(employment_status=chr(34) + mark)}\n".encode(),
            CSV,
            CLIENT_ERROR,
            (mark,),
        ),
        HostileCase(
            "csv-sentinel-number-in-long-column",
            f"{header}\n{line(num_late_payments=SENTINEL_INCOME)}\n".encode(),
            CSV,
            UNPROCESSABLE,
            (repr(SENTINEL_INCOME),),
        ),
        HostileCase(
            "csv-nan-and-inf",
            f"{header}\n{line(income='nan', loan_amount='inf')}\n".encode(),
            CSV,
            frozenset({200, 422}),
        ),
    ]
    return cases


def hostile_cases() -> list[HostileCase]:
    cases = [
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
    return cases
