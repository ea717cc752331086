"""DataFrames in and records out on the hot path, without pandas' per-column Series.

`pd.DataFrame(dict)` sanitizes every column, and records built from `frame[name]` make a
Series per column (`to_dict` even goes row by row). Here both use the internals pandas'
own constructors end in, minus the per-column work, for arrays that are already final
(app.mlflow_compat holds those internals and their public fallbacks).
tests/app/test_frames.py holds the results equal to the public constructors'.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from app.mlflow_compat import block_dtypes, box_native, column_arrays, frame_from_final_arrays

ColumnArrays = dict[str, Any]  # name -> numpy array or pandas ExtensionArray


def frame_from_arrays(columns: ColumnArrays) -> pd.DataFrame:
    """`pd.DataFrame(columns)` for arrays that are final: no copy, no per-column checks."""
    arrays = list(columns.values())
    lengths = {len(array) for array in arrays}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    labels = column_labels(tuple(columns))
    return frame_from_final_arrays(arrays, labels, lengths.pop() if lengths else 0)


def frame_from_matrix(columns: np.ndarray[Any, Any], labels: pd.Index) -> pd.DataFrame:
    """A frame of one dtype from a (columns x rows) array: that is how pandas stores it, so
    there is nothing to stack or copy, however many columns."""
    return pd.DataFrame(columns.T, columns=labels, copy=False)


def column_labels(names: tuple[str, ...]) -> pd.Index:
    """The column Index for these names, one object shared by every frame that has them.

    Building an Index of text labels costs more than a small frame's values, and pandas
    caches what it learns about an Index (uniqueness, lookups) on the object. An Index is
    immutable but for its `name`: one a model has renamed is not shared again.
    """
    labels = _shared_labels(names)
    return labels if labels.name is None else pd.Index(names)


@functools.lru_cache(maxsize=16)
def _shared_labels(names: tuple[str, ...]) -> pd.Index:
    return pd.Index(names)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict(orient="records")`, MLflow's encoding, with labels as strings.

    Labels must be unique. Values are as pandas gives them: each column's `tolist`, and
    for object and extension columns pandas' own boxing (NA becomes None, numpy scalars
    Python ones). Text columns of pandas' `str` dtype hold str and NaN only: left as they are.
    """
    names = [str(name) for name in frame.columns.tolist()]
    blocks = block_dtypes(frame)
    if len(blocks) == 1 and isinstance(blocks[0][0], np.dtype) and blocks[0][0].kind in "biuf":
        # One numeric numpy block: its rows in one call, the values `tolist` gives per column.
        rows = frame.to_numpy().tolist()
        return [dict(zip(names, row, strict=True)) for row in rows]
    columns = [_native_values(array) for array in column_arrays(frame)]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _native_values(array: Any) -> list[Any]:
    values: list[Any] = array.tolist()
    dtype = array.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA:
        return values
    if dtype == np.dtype(object) or isinstance(dtype, ExtensionDtype):
        return [box_native(value) for value in values]
    return values
