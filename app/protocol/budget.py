"""What one request may ask the server to build, checked before it is built.

The body limit bounds bytes; this bounds the table those bytes describe: rows, columns and
cells (rows times columns), read from a JSON body's bytes before it is parsed (rows and
cells) and from the parsed outline, a CSV's header line or a Parquet file's footer, before
any DataFrame exists. A 4 MB JSON body of a million one-cell rows, a 2 MB JSON row of a
million zeros or a 231 KB Parquet file of six million rows is refused here in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow.types import Schema

from app.errors import RequestTooLargeError
from app.protocol.json_outline import Member, object_members


@dataclass(frozen=True)
class RequestBudget:
    max_rows: int
    max_columns: int
    max_cells: int
    # What a Parquet body may decode to: its columns' uncompressed size, as for gzip.
    max_decoded_bytes: int

    @classmethod
    def for_model(
        cls,
        schema: Schema | None,
        *,
        max_rows: int,
        max_columns: int,
        max_cells: int,
        max_decoded_bytes: int,
    ) -> RequestBudget:
        """The column bound is never below the signature's own width."""
        width = len(schema.inputs) if schema is not None and not schema.is_tensor_spec() else 0
        return cls(max_rows, max(max_columns, width), max(max_cells, width), max_decoded_bytes)

    def check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise RequestTooLargeError(
                f"the request holds {rows} rows; the limit is {self.max_rows} (MAX_REQUEST_ROWS)"
            )

    def check_columns(self, columns: int) -> None:
        if columns > self.max_columns:
            raise RequestTooLargeError(
                f"the request holds {columns} columns; the limit is {self.max_columns} "
                "(MAX_REQUEST_COLUMNS)"
            )

    def check_cells(self, cells: int) -> None:
        if cells > self.max_cells:
            raise RequestTooLargeError(
                f"the request holds {cells} values; the limit is {self.max_cells} "
                "(MAX_REQUEST_CELLS)"
            )

    def check_json_bytes(
        self, body: bytes, field_of: Callable[[dict[str, Member]], str | None]
    ) -> None:
        """Bound rows and cells of the member `field_of` picks (None: not bounded) from the
        body's bytes, before anything is built. The bytes' counts never exceed the parsed
        outline's (check_json, which still runs), so no body it admits is refused here."""
        if body.count(b",") < min(self.max_rows, self.max_cells):
            return  # too few commas to outline more rows or cells than either bound
        members = object_members(body)
        field = None if members is None else field_of(members)
        if members is None or field is None:
            return
        rows, cells = _bytes_outline(body, members[field])
        self.check_rows(rows)
        self.check_cells(cells)

    def check_json(self, value: Any, *, tensor: bool) -> None:
        """Bound an input field's value by its outline: the top list or object and the
        lists or objects directly inside it. Columns are not bounded for tensor input,
        where a row's width is the tensor's, not a table's."""
        rows, columns, cells = _json_outline(value)
        self.check_rows(rows)
        self.check_cells(cells)
        if not tensor:
            self.check_columns(columns())

    def check_parquet(self, rows: int, columns: int, decoded_bytes: int) -> None:
        self.check_rows(rows)
        self.check_columns(columns)
        self.check_cells(rows * columns)
        self.check_decoded_bytes(decoded_bytes)

    def check_decoded_bytes(self, decoded_bytes: int) -> None:
        if decoded_bytes > self.max_decoded_bytes:
            raise RequestTooLargeError(
                f"the Parquet data decodes to {decoded_bytes} bytes; the limit is "
                f"{self.max_decoded_bytes} (MAX_BODY_BYTES)"
            )


def _json_outline(value: Any) -> tuple[int, Any, int]:
    """Rows, a callable for the columns (computed only once cells passed), and cells."""
    if isinstance(value, dict):
        if isinstance(value.get("columns"), list) or isinstance(value.get("data"), list):
            # dataframe_split: a row's width beyond its columns is refused by the parser.
            data = value.get("data")
            rows = data if isinstance(data, list) else []
            names = value.get("columns")
            named = len(names) if isinstance(names, list) else 0
            width = max((_width(row) for row in rows), default=0)
            return len(rows), lambda: max(named, width), max(named, sum(map(_width, rows)))
        # Columns by name ({"a": [...], "b": [...]}).
        lengths = [_width(column) for column in value.values()]
        return max(lengths, default=0), lambda: len(value), sum(lengths)
    if isinstance(value, list):

        def columns() -> int:
            keyed = [row for row in value if isinstance(row, dict)]
            named = len(set().union(*keyed)) if keyed else 0
            return max(named, max((_width(row) for row in value), default=0))

        return len(value), columns, sum(map(_width, value))
    return 1, lambda: 1, 1


def _bytes_outline(body: bytes, value: Member) -> tuple[int, int]:
    """_json_outline's rows and cells, read from the bytes: never more than it counts."""
    if value.kind == "array":
        return value.elements, value.element_widths
    members = object_members(body, value.start) if value.kind == "object" else None
    if members is None:
        return 0, 0
    columns, data = members.get("columns"), members.get("data")
    named = columns.elements if columns is not None and columns.kind == "array" else None
    table = data if data is not None and data.kind == "array" else None
    if named is not None or table is not None:  # dataframe_split
        rows, widths = (table.elements, table.element_widths) if table else (0, 0)
        return rows, max(named or 0, widths)
    lengths = [member.elements if member.kind != "scalar" else 1 for member in members.values()]
    return max(lengths, default=0), sum(lengths)


def _width(item: Any) -> int:
    return len(item) if isinstance(item, list | dict) else 1
