"""DataFrames in and records out on the hot path, without pandas' per-column Series.

FrameBuilder makes the model input from a parsed request (app.protocol.parsing parses; this
builds), with the signature's dtypes. `pd.DataFrame(dict)` sanitizes every column, and
records built from `frame[name]` make a Series per column (`to_dict` even goes row by
row). Here both use the internals pandas' own constructors end in, minus the per-column
work, for arrays that are already final (app.mlflow_compat holds those internals and
their public fallbacks).
tests/app/test_frames.py holds the results equal to the public constructors'.
"""

from __future__ import annotations

import functools
from itertools import chain
from typing import Any, cast

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.types import DataType, Schema
from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema
from pandas.api.extensions import ExtensionDtype

from app.errors import SchemaMismatchError
from app.mlflow_compat import block_dtypes, box_native, column_arrays, frame_from_final_arrays
from app.protocol.validation import describe_type, plain_type

ColumnArrays = dict[str, Any]  # name -> numpy array or pandas ExtensionArray
# What a request contributes: columns as lists (the lean JSON path) or a DataFrame.
ColumnData = dict[str, list[Any]]
ModelInput = ColumnData | pd.DataFrame
# The dtype pandas infers for text, which MLflow's cast keeps.
TEXT_DTYPE: Any = pd.Series(["text"]).dtype


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
    if not names:  # rows of no column: zipping no columns would give no rows at all
        return [{} for _ in range(len(frame))]
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


class FrameBuilder:
    """Builds the model input MLflow's parser would: a DataFrame cast to the signature.

    Validated numeric and boolean columns go straight to arrays of the signature's dtype
    (what MLflow's cast gives, without its per-column astype); validated text columns get
    the dtype pandas infers for text, as MLflow leaves them. Any other type takes MLflow's
    own cast.
    """

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self.dtypes = simple_dtypes(schema) if has_columns(schema) else None
        # Every column of one numeric dtype (all doubles, say): the frame is one array.
        kinds = set(self.dtypes.values()) if self.dtypes else set()
        self.uniform_dtype = kinds.pop() if len(kinds) == 1 else None
        self.names = list(self.dtypes) if self.dtypes else []

    def __call__(self, data: ModelInput) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            return data
        if self.uniform_dtype is not None and list(data) == self.names:
            frame = self._one_array_frame(list(data.values()), self.uniform_dtype)
            if frame is not None:
                return frame
        if self.dtypes is not None:
            return frame_from_arrays(
                {name: self._array(name, values) for name, values in data.items()}
            )
        frame = pd.DataFrame(data)
        if self.schema is None:
            return frame
        try:
            cast_frame: pd.DataFrame = cast_df_types_according_to_schema(frame, self.schema)
        except (ValueError, TypeError, OverflowError, MlflowException):
            raise SchemaMismatchError(
                "values do not convert to the model's input types (see GET /version)"
            ) from None
        return cast_frame

    def _one_array_frame(
        self, columns: list[list[Any]], dtype: np.dtype[Any]
    ) -> pd.DataFrame | None:
        """The frame as one (columns x rows) array, converted value by value as
        `np.asarray` would; None when a value does not convert (the column-wise path then
        names the column)."""
        rows = len(columns[0]) if columns else 0
        if any(len(values) != rows for values in columns):
            return None
        try:
            flat = np.fromiter(chain.from_iterable(columns), dtype, count=len(columns) * rows)
        except (ValueError, TypeError, OverflowError):
            return None
        return frame_from_matrix(flat.reshape(len(columns), rows), column_labels(tuple(self.names)))

    def _array(self, name: str, values: list[Any]) -> Any:
        assert self.dtypes is not None
        dtype = self.dtypes[name]
        if dtype is None:
            return pd.array(values, TEXT_DTYPE)
        try:
            return np.asarray(values, dtype)
        except (ValueError, TypeError, OverflowError):
            # Text that is not a number of this type (validation let it through to MLflow's
            # own conversion, which refuses it the same way).
            spec_type = next(s.type for s in self.schema.inputs if s.name == name)  # type: ignore[union-attr]
            raise SchemaMismatchError(
                f"column '{name}' expects {describe_type(spec_type)}, got text that is not one"
            ) from None


FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_SIMPLE_DTYPES: dict[DataType, np.dtype[Any] | None] = {
    DataType.long: np.dtype(np.int64),
    DataType.integer: np.dtype(np.int32),
    DataType.double: np.dtype(np.float64),
    DataType.float: np.dtype(np.float32),
    DataType.boolean: np.dtype(np.bool_),
    DataType.string: None,  # TEXT_DTYPE: pandas infers its string dtype; MLflow's cast keeps it
}


def simple_dtypes(schema: Schema | None) -> dict[str, np.dtype[Any] | None] | None:
    """Column dtypes when every column is required and of a simple type, else None."""
    specs = schema.inputs if schema is not None else []
    kinds = [plain_type(spec) for spec in specs]
    if not specs or not all(
        kind in _SIMPLE_DTYPES and spec.required for kind, spec in zip(kinds, specs, strict=True)
    ):
        return None
    return {
        str(spec.name): _SIMPLE_DTYPES[cast(DataType, kind)]
        for spec, kind in zip(specs, kinds, strict=True)
    }


def has_columns(schema: Schema | None) -> bool:
    return schema is not None and not schema.is_tensor_spec()
