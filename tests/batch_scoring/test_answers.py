"""A DataFrame answer converted column by column gives exactly what the server's encoder
and a client's decoder give: the same values, of the same types."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from batch_scoring.answers import (
    Columns,
    ModelFailedError,
    answer_columns,
    as_answered,
    frame_columns,
)

Column = Callable[[np.random.Generator, int], Any]

FLOAT_SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, 0.1, 1 / 3]


def _floats(rng: np.random.Generator, rows: int) -> Any:
    values = rng.normal(scale=10.0 ** rng.integers(-5, 12), size=rows)
    special = rng.random(rows) < 0.3
    values[special] = rng.choice(FLOAT_SPECIALS, size=int(special.sum()))
    return values


def _narrowed(values: Any, dtype: Any) -> Any:
    with np.errstate(over="ignore"):  # past the type's range: infinity, as intended
        return values.astype(dtype)


def _integers(dtype: Any) -> Column:
    info = np.iinfo(dtype)

    def make(rng: np.random.Generator, rows: int) -> Any:
        extremes = np.array([info.min, info.max, 0], dtype=dtype)
        values = rng.integers(info.min, info.max, size=rows, dtype=dtype, endpoint=True)
        pick = rng.random(rows) < 0.3
        values[pick] = rng.choice(extremes, size=int(pick.sum()))
        return values

    return make


TEXTS = ["", "a", "é", "😀", 'quote " and \\ backslash', "\x00", "line\nbreak", "日本語", " "]


def _texts(rng: np.random.Generator, rows: int) -> list[str | None]:
    return [None if rng.random() < 0.2 else str(rng.choice(TEXTS)) for _ in range(rows)]


# Columns the direct conversion takes.
DIRECT: dict[str, Column] = {
    "float64": _floats,
    "float32": lambda rng, rows: _narrowed(_floats(rng, rows), np.float32),
    "float16": lambda rng, rows: _narrowed(_floats(rng, rows), np.float16),
    "int8": _integers(np.int8),
    "int32": _integers(np.int32),
    "int64": _integers(np.int64),
    "uint8": _integers(np.uint8),
    "uint64": _integers(np.uint64),
    "bool": lambda rng, rows: rng.random(rows) < 0.5,
    "object text": lambda rng, rows: pd.Series(_texts(rng, rows), dtype=object),
    "str (NaN missing)": lambda rng, rows: pd.array(
        _texts(rng, rows), dtype=pd.StringDtype(na_value=np.nan)
    ),
    "string (NA missing)": lambda rng, rows: pd.array(_texts(rng, rows), dtype="string"),
}
DTYPES = [*(name for name in DIRECT if " " not in name), "object", "str", "string"]
# Columns that take the encoder's round trip.
ROUND_TRIP: dict[str, Column] = {
    "datetimes": lambda rng, rows: pd.date_range("2026-01-01", periods=rows, freq="37min"),
    "object datetimes": lambda rng, rows: pd.array(
        [datetime.date(2026, 1, 1 + i % 28) for i in range(rows)], dtype=object
    ),
    "nested": lambda rng, rows: pd.array(
        [[i, {"k": [1.5, None]}] if i % 2 else {"a": i} for i in range(rows)], dtype=object
    ),
    "numpy scalars": lambda rng, rows: pd.array(
        [np.float32(i / 3) if i % 2 else np.int64(i) for i in range(rows)], dtype=object
    ),
    "mixed": lambda rng, rows: pd.array(
        [["x", 1, 2.5, True, None, float("nan")][i % 6] for i in range(rows)], dtype=object
    ),
    "category": lambda rng, rows: pd.Categorical(_texts(rng, rows)),
    "nullable ints": lambda rng, rows: pd.array(
        [None if i % 3 == 0 else i for i in range(rows)], dtype="Int64"
    ),
}


def exactly(columns: Columns) -> dict[str, list[tuple[type, str]]]:
    """Values with their types and reprs: 1 == 1.0 == True and -0.0 == 0.0 in Python, and
    NaN is unequal to itself; the conversion must keep what the decoder gives."""

    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [value(inner) for inner in item]
        if isinstance(item, dict):
            return {key: value(inner) for key, inner in item.items()}
        return (type(item), repr(item))

    return {name: [value(item) for item in values] for name, values in columns.items()}


def decoded(frame: pd.DataFrame) -> Columns:
    """What the server's encoder writes for the frame, decoded, by column."""
    columns, records = answer_columns(as_answered(frame))
    assert records or len(frame) == 0
    return columns


def random_frame(rng: np.random.Generator, kinds: dict[str, Column], rows: int) -> pd.DataFrame:
    names = rng.choice(list(kinds), size=int(rng.integers(1, 6)))
    return pd.DataFrame({f"{name} {i}": kinds[name](rng, rows) for i, name in enumerate(names)})


def test_frames_of_numbers_booleans_and_text_are_converted_as_the_encoder_answers() -> None:
    rng = np.random.default_rng(20261207)
    for _ in range(300):
        frame = random_frame(rng, DIRECT, int(rng.integers(1, 40)))
        assert frame.dtypes.map(str).isin(DTYPES).all(), frame.dtypes
        direct = frame_columns(frame)
        assert direct is not None, frame.dtypes
        assert exactly(direct) == exactly(decoded(frame)), frame.dtypes


def test_any_other_column_takes_the_round_trip() -> None:
    rng = np.random.default_rng(7)
    for name, make in ROUND_TRIP.items():
        frame = pd.DataFrame({"score": _floats(rng, 12), name: make(rng, 12)})
        assert frame_columns(frame) is None, name
    dated = pd.DataFrame({"when": ROUND_TRIP["datetimes"](rng, 2)})
    assert decoded(dated) == {"when": ["2026-01-01T00:00:00", "2026-01-01T00:37:00"]}


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({0: [1.0], "b": [2.0]}),  # a label that is not text
        pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]),  # a label twice
        pd.DataFrame(index=range(3)),  # no column
        # the encoder escapes it (Arrow-backed text cannot even hold it)
        pd.DataFrame({"text": pd.Series(["fine", "lone \ud800 surrogate"], dtype=object)}),
    ],
    ids=["label not text", "label twice", "no column", "lone surrogate"],
)
def test_frames_the_direct_conversion_leaves_to_the_round_trip(frame: pd.DataFrame) -> None:
    assert frame_columns(frame) is None


def test_null_for_nan_and_infinities_and_text_kept_as_is() -> None:
    frame = pd.DataFrame(
        {
            "score": [0.5, np.nan, np.inf, -np.inf, -0.0],
            "count": np.array([1, 2, 3, 4, 2**62], dtype=np.int64),
            "flag": [True, False, True, False, True],
            "label": pd.array(["é", None, "😀", "", "x"], dtype=pd.StringDtype(na_value=np.nan)),
        }
    )
    direct = frame_columns(frame)
    assert direct is not None
    assert exactly(direct) == exactly(
        {
            "score": [0.5, None, None, None, -0.0],
            "count": [1, 2, 3, 4, 2**62],
            "flag": [True, False, True, False, True],
            "label": ["é", None, "😀", "", "x"],
        }
    )
    assert exactly(direct) == exactly(decoded(frame))


def test_a_lone_surrogate_in_an_answer_fails_the_run_with_the_reason() -> None:
    frame = pd.DataFrame({"text": pd.Series(["fine", "lone \ud800 surrogate"], dtype=object)})
    with pytest.raises(ModelFailedError, match="lone surrogate"):
        as_answered(frame)
