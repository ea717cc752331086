"""Predictions to response bytes, exactly as MLflow's scoring server encodes them.

MLflow turns the output into JSON-able Python (`_get_jsonable_obj`: DataFrames and Series
as records, arrays as lists) and dumps it with its NumpyEncoder (numpy scalars, bytes as
base64, datetimes as ISO strings, pydantic models). Here orjson does the dump with that
same encoder as its fallback, and datetimes are handed to it too, so values match. One
deliberate difference: NaN and infinities become `null` (MLflow writes `NaN`, which is
not JSON).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pandas as pd

from app.mlflow_compat import json_default, jsonable
from app.protocol.frames import frame_records

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_DEFAULT = json_default()


def to_jsonable(predictions: Any) -> Any:
    """MLflow's JSON-able form of a model's output (DataFrames as records)."""
    if isinstance(predictions, pd.DataFrame) and predictions.columns.is_unique:
        return frame_records(predictions)
    return jsonable(predictions)


def encode_predictions(outputs: Any, *, unwrapped: bool = False) -> bytes:
    """The response body: `{"predictions": ...}`, or the bare output for unwrapped LLM input."""
    return encode_json(outputs if unwrapped else {"predictions": outputs})


def encode_json(value: Any) -> bytes:
    """Raises TypeError (orjson.JSONEncodeError) for what MLflow's encoder refuses too."""
    try:
        return orjson.dumps(value, default=_DEFAULT, option=_OPTIONS)
    except orjson.JSONEncodeError as error:
        if "surrogates" not in str(error):
            raise
    # A lone surrogate (a string the client sent as "\ud800" and the model returned):
    # orjson refuses it, MLflow's json.dumps writes it back as its escape. Done the same
    # way here; a NaN beside it is refused (ValueError) rather than written as `NaN`.
    try:
        return json.dumps(value, default=_DEFAULT, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as error:
        raise TypeError("the answer holds a lone surrogate and a NaN") from error
