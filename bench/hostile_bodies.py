"""The costliest bodies a client can send within the limits, one builder per shape.

Shared by `python -m bench.hostile` (which measures them against the production command)
and the hostile tests. Every body is under the default MAX_BODY_BYTES (8 MiB); the cost is
in what it asks the server to build.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from registry_scripts.demo_data import EXAMPLE_APPLICANT

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"

VALID_ROW = EXAMPLE_APPLICANT
WIDE_COLUMNS = 1_000_000  # 2 MB of `0,`: a quarter of the body limit
ONE_CELL_ROWS = 1_000_000  # 4 MB of `[0],`: half the body limit
INFLATING_ROWS = 6_000_000  # the 231 KB zstd Parquet the issue measured


@dataclass(frozen=True)
class HostileBody:
    name: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    return frame.to_parquet(compression="zstd", index=False)


def _valid_csv(rows: int) -> bytes:
    header = ",".join(VALID_ROW)
    line = ",".join(str(value) for value in VALID_ROW.values())
    return (header + "\n" + "\n".join([line] * rows) + "\n").encode()


def _wide_json_instances() -> bytes:
    return b'{"instances":[[' + b",".join([b"0"] * WIDE_COLUMNS) + b"]]}"


def _wide_json_records() -> bytes:
    return _json({"dataframe_records": [{f"c{i}": 0 for i in range(200_000)}]})


def _wide_json_split() -> bytes:
    columns = [f"c{i}" for i in range(200_000)]
    return _json({"dataframe_split": {"columns": columns, "data": [[0] * len(columns)]}})


def _one_cell_rows() -> bytes:
    return b",".join([b"[0]"] * ONE_CELL_ROWS)


def _many_narrow_rows() -> bytes:
    """Many one-cell rows: cheap per row, refused by the row count (from the bytes)."""
    return b'{"instances":[' + _one_cell_rows() + b"]}"


def _many_narrow_split_rows() -> bytes:
    return b'{"dataframe_split":{"columns":["c"],"data":[' + _one_cell_rows() + b"]}}"


def _many_narrow_rows_by_name() -> bytes:
    return b'{"inputs":{"c":[' + _one_cell_rows() + b"]}}"


def _many_narrow_rows_utf16() -> bytes:
    """The same body in UTF-16, which MLflow's server (json.loads) reads too."""
    return _many_narrow_rows().decode().encode("utf-16")


def _deep_json() -> bytes:
    return b'{"instances":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _wide_csv() -> bytes:
    columns = 200_000
    header = ",".join(f"c{i}" for i in range(columns))
    return (header + "\n" + ",".join(["0"] * columns) + "\n").encode()


def _csv_integer_overflow() -> bytes:
    row = {**VALID_ROW, "num_late_payments": 2**70}
    return (",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n").encode()


def _inflating_parquet() -> bytes:
    frame = pd.DataFrame(
        {name: [value] * INFLATING_ROWS for name, value in VALID_ROW.items() if name != "age"}
    )
    return _parquet(frame)


def _wide_parquet() -> bytes:
    return _parquet(pd.DataFrame({f"c{i}": [0] for i in range(20_000)}))


def _dictionary_text_parquet() -> bytes:
    """10000 rows sharing one 20 KB string: 200 MB decoded, stored once in the dictionary."""
    frame = pd.DataFrame([{**VALID_ROW, "employment_status": "x" * 20_000}] * 10_000)
    return _parquet(frame)


def _category_parquet() -> bytes:
    return _parquet(pd.DataFrame([VALID_ROW] * 3).astype("category"))


def _gzip_bomb() -> bytes:
    return gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)


def _gzip_members() -> bytes:
    """Two gzip members, 1 + 3 rows: a server reading only the first answers 1 prediction."""
    header_and_one = _valid_csv(1)
    three = b"\n".join(header_and_one.splitlines()[1:] * 3) + b"\n"
    return gzip.compress(header_and_one) + gzip.compress(three)


def _gzip_member_then_bomb() -> bytes:
    return gzip.compress(_valid_csv(1)) + _gzip_bomb()


def _big_header() -> tuple[tuple[str, str], ...]:
    return (("X-Padding", "a" * (8 * 1024 * 1024)),)


def _many_headers() -> tuple[tuple[str, str], ...]:
    return tuple((f"X-H{i}", "a" * 64) for i in range(20_000))


_BUILDERS: list[tuple[str, str, Callable[[], bytes]]] = [
    ("json-wide-instances", JSON, _wide_json_instances),
    ("json-wide-records", JSON, _wide_json_records),
    ("json-wide-split", JSON, _wide_json_split),
    ("json-many-rows", JSON, _many_narrow_rows),
    ("json-many-rows-split", JSON, _many_narrow_split_rows),
    ("json-many-rows-by-name", JSON, _many_narrow_rows_by_name),
    ("json-many-rows-utf16", JSON, _many_narrow_rows_utf16),
    ("json-deep", JSON, _deep_json),
    ("csv-wide", CSV, _wide_csv),
    ("csv-integer-overflow", CSV, _csv_integer_overflow),
    ("parquet-inflating", PARQUET, _inflating_parquet),
    ("parquet-wide", PARQUET, _wide_parquet),
    ("parquet-dictionary-text", PARQUET, _dictionary_text_parquet),
    ("parquet-category", PARQUET, _category_parquet),
    ("gzip-bomb", CSV, _gzip_bomb),
    ("gzip-member-then-bomb", CSV, _gzip_member_then_bomb),
]


def hostile_bodies() -> list[HostileBody]:
    """Every shape; bodies are built on call (a few seconds, some MB each)."""
    bodies = [HostileBody(name, kind, build()) for name, kind, build in _BUILDERS]
    gzipped = (("Content-Encoding", "gzip"),)
    bodies = [
        HostileBody(b.name, b.content_type, b.body, gzipped if "gzip" in b.name else ())
        for b in bodies
    ]
    small = _json({"dataframe_records": [VALID_ROW]})
    bodies.append(HostileBody("header-8-mib", JSON, small, _big_header()))
    bodies.append(HostileBody("headers-20000", JSON, small, _many_headers()))
    return bodies


def gzip_members_body() -> HostileBody:
    """Not hostile but once answered wrong: must score all 4 rows."""
    return HostileBody("gzip-two-members", CSV, _gzip_members(), (("Content-Encoding", "gzip"),))
