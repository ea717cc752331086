"""Check a parsed input against the model's input schema before predicting.

It answers with a message that names the column and the expected type, without echoing
any value. It is also why MLflow's own enforcement can be skipped for the frames it would
pass unchanged (app.runtime.direct_predict); any other frame still goes through it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from mlflow.types import ColSpec, DataType, ParamSchema, Schema

from app.errors import BadRequestError, SchemaMismatchError

# The one refusal of a request with nothing in it, whichever protocol or format it came in.
NO_ROWS = "the request holds no rows to score"

_INTEGER_TYPES = {DataType.long, DataType.integer}
# Columns MLflow casts to numpy integers or booleans: a missing value fails the cast (or, for
# booleans, silently becomes False), so it is refused even where the column is optional.
_NO_MISSING_TYPES = {DataType.long, DataType.integer, DataType.boolean}
_NUMBER_TYPES = {DataType.long, DataType.integer, DataType.double, DataType.float}
_TYPE_WORDS: dict[object, str] = {
    DataType.long: "long (whole numbers)",
    DataType.integer: "integer (whole numbers)",
    DataType.double: "double (numbers)",
    DataType.float: "float (numbers)",
    DataType.string: "string (text)",
    DataType.boolean: "boolean (true/false)",
}


def plain_type(spec: object) -> DataType | None:
    """The column's scalar DataType; None for tensors and for Array, Object and Map columns,
    which MLflow's own enforcement checks."""
    if isinstance(spec, ColSpec) and isinstance(spec.type, DataType):
        return spec.type
    return None


def check_input(data: Any, schema: Schema | None) -> None:
    """Raise SchemaMismatchError for the first problem found, BadRequestError for no rows."""
    if isinstance(data, pd.DataFrame) and data.empty:
        raise BadRequestError(NO_ROWS)
    if schema is None or schema.is_tensor_spec() or not isinstance(data, pd.DataFrame):
        return
    # Column labels are the caller's: a JSON object as a label must not break the lookup.
    present = {label for label in data.columns if isinstance(label, str | int)}
    require_columns(set(schema.required_input_names()).difference(present), schema)
    for spec in schema.inputs:
        if isinstance(spec, ColSpec) and spec.name in present:
            problem = _column_problem(data[spec.name], spec)
            if problem:
                raise SchemaMismatchError(f"column '{spec.name}' {problem}")


def require_columns(missing: set[str | int], schema: Schema) -> None:
    """Raise SchemaMismatchError naming the required columns the request lacks."""
    if missing:
        ordered = [name for name in schema.input_names() if name in missing]
        raise SchemaMismatchError(
            f"missing required column(s): {_names(ordered)}; the model expects "
            f"{_names(schema.input_names())}"
        )


def check_columns(columns: dict[str, list[Any]], schema: Schema) -> None:
    """The lean JSON path's check: column lists of JSON values against the signature.

    Absent columns are the parser's to report (require_columns): it sees the records.
    """
    for spec in schema.inputs:
        if isinstance(spec, ColSpec) and spec.name in columns:
            problem = _values_problem(columns[spec.name], spec)
            if problem:
                raise SchemaMismatchError(f"column '{spec.name}' {problem}")


def _values_problem(values: list[Any], spec: ColSpec) -> str | None:
    data_type = plain_type(spec)
    fits = _JSON_CHECKS.get(data_type) if data_type is not None else None
    if fits is None or data_type is None:
        return None  # a type we do not check at JSON level; MLflow's enforcement does
    if _clearly_fits(values, data_type):
        return None
    expected = f"expects {describe_type(data_type)}"
    for value in values:
        if value is None or (type(value) is float and math.isnan(value)):
            if spec.required:
                return f"is required but has missing (null) values; it {expected}"
            if data_type in _NO_MISSING_TYPES:
                return f"has missing (null) values, which a {data_type.name} column cannot hold"
            continue
        if not fits(value):
            if data_type in _INTEGER_TYPES and type(value) in (int, float):
                if type(value) is float and not value.is_integer():
                    return f"{expected}, got decimal numbers"
                return f"{expected}, got numbers outside its range"
            return f"{expected}, got {_kind_word(value)}"
    return None


_INTEGER_BOUNDS = {DataType.long: (-(2**63), 2**63 - 1), DataType.integer: (-(2**31), 2**31 - 1)}
_CLEAR_TYPES: dict[object, set[type]] = {
    DataType.double: {int, float},
    DataType.float: {int, float},
    DataType.string: {str},
    DataType.boolean: {bool},
}


def _clearly_fits(values: list[Any], data_type: object) -> bool:
    """The common case, decided at C speed (types as a set, min and max of ints).

    False means "look value by value", which also finds the words for the error.
    """
    kinds = set(map(type, values))
    if data_type in _INTEGER_BOUNDS:
        low, high = _INTEGER_BOUNDS[data_type]
        return kinds == {int} and low <= min(values) and max(values) <= high
    return kinds <= _CLEAR_TYPES.get(data_type, set()) and bool(kinds)


def _whole_number_in(low: int, high: int) -> Any:
    """A check for whole numbers (ints, or floats like 35.0) that fit the column's dtype."""

    def fits(value: Any) -> bool:
        if type(value) is str:
            # MLflow's cast converts text like "35" (int() of it); anything else fails there.
            try:
                return low <= int(value) <= high
            except ValueError:
                return False
        if type(value) is float:
            # Past 2**53 a float is not an exact integer: JSON parsers turn integers beyond
            # 64 bits into such floats, so they would be accepted as a rounded value.
            return value.is_integer() and abs(value) < 2**53 and low <= value <= high
        return type(value) is int and low <= value <= high

    return fits


def _is_number(value: Any) -> bool:
    if type(value) is str:
        # MLflow's cast converts text like "3.5" exactly (float() of it): no value is lost.
        try:
            float(value)
        except ValueError:
            return False
        return True
    return type(value) is int or type(value) is float


_JSON_CHECKS: dict[object, Any] = {
    DataType.long: _whole_number_in(*_INTEGER_BOUNDS[DataType.long]),
    DataType.integer: _whole_number_in(*_INTEGER_BOUNDS[DataType.integer]),
    DataType.double: _is_number,
    DataType.float: _is_number,
    DataType.string: lambda value: type(value) is str,
    DataType.boolean: lambda value: type(value) is bool,
}


def describe_type(data_type: object) -> str:
    return _TYPE_WORDS.get(data_type, str(data_type))


def _column_problem(column: pd.Series, spec: ColSpec) -> str | None:
    data_type = plain_type(spec)
    if data_type is None:
        return None  # Array, Object, Map: MLflow's enforcement checks them
    if isinstance(column.dtype, pd.CategoricalDtype):
        # What `df.astype("category").to_parquet()` sends: checked as its values' own type.
        column = column.astype(column.cat.categories.dtype)
    expected = f"expects {describe_type(data_type)}"
    missing = column.isna().to_numpy().any()
    if missing and spec.required:
        return f"is required but has missing (null) values; it {expected}"
    if missing and data_type in _NO_MISSING_TYPES:
        return f"has missing (null) values, which a {data_type.name} column cannot hold"
    kind = column.dtype.kind
    if data_type in _NUMBER_TYPES:
        if kind == "b":
            return f"{expected}, got booleans"
        if kind == "O":
            return _values_problem(column.tolist(), spec)
        if kind not in "iuf":
            return f"{expected}, got {_value_kinds(column)}"
        if data_type in _INTEGER_TYPES and kind == "f":
            values = column.dropna().to_numpy()
            if (values != values.round()).any():
                return f"{expected}, got decimal numbers"
    elif data_type == DataType.string:
        if kind != "O" and not isinstance(column.dtype, pd.StringDtype):
            return f"{expected}, got {_value_kinds(column)}"
        if not column.dropna().map(lambda value: isinstance(value, str)).all():
            return f"{expected}, got {_value_kinds(column)}"
    elif data_type == DataType.boolean and kind != "b":
        return f"{expected}, got {_value_kinds(column)}"
    return None


def _value_kinds(column: pd.Series) -> str:
    """Words for the kinds of values present ('text', 'numbers', ...), never the values."""
    kinds = sorted({_kind_word(value) for value in column.dropna().head(1000)})
    if not kinds and column.dtype.kind in "iuf":
        kinds = ["numbers"]
    return " and ".join(kinds) or "no values"


def _kind_word(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "booleans"
    if isinstance(value, numbers.Number):
        return "numbers"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple | np.ndarray):
        return "arrays"
    if isinstance(value, dict):
        return "objects"
    return "other values"


def _names(names: Sequence[object]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def check_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> None:
    """Type-check the params the model declares; MLflow ignores undeclared ones, so do we."""
    if not params or schema is None:
        return
    for spec in schema.params:
        if spec.name in params and params[spec.name] is not None:
            value = params[spec.name]
            values = value if spec.shape is not None and isinstance(value, list) else [value]
            if spec.shape is not None and not isinstance(value, list):
                raise SchemaMismatchError(f"param '{spec.name}' expects a list")
            if not all(_param_value_fits(item, spec.dtype) for item in values):
                raise SchemaMismatchError(
                    f"param '{spec.name}' expects {describe_type(spec.dtype)}, "
                    f"got {_kind_word(values[0]) if values else 'no values'}"
                )


def _param_value_fits(value: Any, data_type: object) -> bool:
    if isinstance(value, bool):
        return data_type == DataType.boolean
    if data_type in _INTEGER_TYPES:
        return isinstance(value, int)
    if data_type in _NUMBER_TYPES:
        return isinstance(value, int | float)
    if data_type in (DataType.string, DataType.datetime):
        return isinstance(value, str)
    return data_type != DataType.boolean
