"""A chunk's answers as /invocations answers them, by column: what a client decodes from
`predictions`, one list per field of the records answered, or one list (`prediction`).

In general the model's output is encoded by the server's encoder and decoded again, so
each value is exactly the server's (NaN as null, numpy values as JSON numbers, datetimes
as ISO text...). A DataFrame of numbers, booleans and text, the common answer, is
converted column by column instead: the same values (tests/batch_scoring compare the two
on many frames), without building a record per row, encoding it, decoding it and
splitting it into columns again. Any other column takes the round trip.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd

from app.mlflow_compat import column_arrays
from app.protocol.encoding import encode_predictions, to_jsonable

# The column of a model's output that is not a record per row (a number, a list, a text).
PREDICTION = "prediction"
Columns = dict[str, list[Any]]


class ModelFailedError(Exception):
    """The model failed on rows it did not refuse, or answered other than one value per
    row: the run stops, as the server would answer 500."""


def as_answered(predictions: Any) -> Any:
    """What /invocations answers in `predictions`, as a client decodes it."""
    try:
        body = encode_predictions(to_jsonable(predictions))
    except TypeError as error:  # orjson's JSONEncodeError: the server answers 500 too
        raise ModelFailedError(f"the model's output cannot be encoded as JSON: {error}") from None
    try:
        return orjson.loads(body)["predictions"]
    except orjson.JSONDecodeError:  # the server writes a lone surrogate escaped, as MLflow does
        raise ModelFailedError(
            "the model's output holds text that is not valid Unicode (a lone surrogate), "
            "which a Parquet output cannot store"
        ) from None


def answer_columns(answers: list[Any]) -> tuple[Columns, bool]:
    """Decoded answers by column, and whether they are records: records become one column
    per field (in order of first appearance, null where a record lacks it); anything else
    is one column, `prediction`."""
    if answers and all(isinstance(row, dict) for row in answers):
        names = list(dict.fromkeys(name for row in answers for name in row))
        return {name: [row.get(name) for row in answers] for name in names}, True
    return {PREDICTION: answers}, False


def records_of(columns: Columns, rows: int) -> list[dict[str, Any]]:
    """Columns of records, `rows` long, back as one record per row (absent fields as null)."""
    if not columns:
        return [{} for _ in range(rows)]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def joined_columns(pieces: list[tuple[int, Columns]]) -> Columns:
    """Columns of records answered in pieces (each with its row count), one piece after
    another: `answer_columns` of their records, without building them."""
    if len(pieces) == 1:
        return pieces[0][1]
    names = dict.fromkeys(name for _, piece in pieces for name in piece)
    return {
        name: [value for rows, piece in pieces for value in piece.get(name, [None] * rows)]
        for name in names
    }


def frame_columns(frame: pd.DataFrame) -> Columns | None:
    """`answer_columns(as_answered(frame))[0]` for a frame of text-labelled columns of
    numbers, booleans and text, converted directly; None for any other frame."""
    names = frame.columns.tolist()
    if not names or not all(type(name) is str for name in names) or len(set(names)) < len(names):
        return None
    columns: Columns = {}
    for name, array in zip(names, column_arrays(frame), strict=True):
        values = _json_values(array)
        if values is None:
            return None
        columns[name] = values
    return columns


def _json_values(array: Any) -> list[Any] | None:
    dtype = array.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return array.tolist()  # type: ignore[no-any-return]
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        values: list[Any] = array.tolist()
        for position in np.flatnonzero(~np.isfinite(array)).tolist():
            values[position] = None  # JSON has no NaN or infinity: the encoder writes null
        return values
    if isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object):
        values = array.tolist()
        if isinstance(dtype, pd.StringDtype):  # text and its missing marker only
            for position in np.flatnonzero(pd.isna(array)).tolist():
                values[position] = None
        if not set(map(type, values)) <= {str, type(None)}:
            return None
        try:  # a lone surrogate: the encoder escapes it, which the round trip must decide
            "".join(filter(None, values)).encode()
        except UnicodeEncodeError:
            return None
        return values
    return None
