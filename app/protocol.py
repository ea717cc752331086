"""MLflow's scoring protocol: request bodies in, `{"predictions": ...}` out.

Accepts what `mlflow models serve` accepts (JSON with exactly one of `dataframe_split`,
`dataframe_records`, `instances`, `inputs`, optional `params`; `text/csv`; Parquet) plus
`{"data": [records]}`. Tabular JSON takes a lean path: records become column lists,
checked value by value, and the DataFrame is built once per batch with MLflow's own
casting, so the model sees what MLflow's server would give it. Other shapes go through
MLflow's own parsers.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import numpy as np
import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types import ColSpec, DataType, Schema
from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema

from app.batching import ColumnData, ModelInput
from app.errors import (
    BadRequestError,
    MalformedRequestError,
    SchemaMismatchError,
    UnsupportedMediaTypeError,
)
from app.frames import frame_from_arrays
from app.validation import check_columns, check_input, require_columns

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SUPPORTED_CONTENT_TYPES = (JSON, CSV, PARQUET)

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
RECORDS_ALIAS = "data"  # `{"data": [...]}`, what many hand-written clients send
PARAMS_FIELD = "params"

# What pandas infers for a column of text (`str` in pandas 3), as MLflow's parser gets it.
TEXT_DTYPE: Any = pd.Series(["text"]).dtype
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_SHAPE_HELP = (
    "send a JSON object with exactly one of "
    + ", ".join(f"'{field}'" for field in (*INPUT_FIELDS, RECORDS_ALIAS))
    + " and optionally 'params'"
)


@dataclass(frozen=True)
class ScoringRequest:
    data: ModelInput | Any  # column lists or a DataFrame; tensors stay as MLflow parses them
    rows: int
    params: dict[str, Any] | None
    # True for the lean path's validated columns and for DataFrames: what the batcher can
    # combine. Other parsed shapes (tensors, MLflow's dicts of arrays) are scored alone.
    batchable: bool


def parse_request(body: bytes, content_type: str | None, schema: Schema | None) -> ScoringRequest:
    mime_type = _media_type(content_type)
    if mime_type == JSON:
        return _parse_json(body, schema)
    frame = _parse_csv(body, schema) if mime_type == CSV else _parse_parquet(body)
    check_input(frame, schema)
    return ScoringRequest(frame, len(frame), None, batchable=True)


class FrameBuilder:
    """Builds the model input MLflow's parser would: a DataFrame cast to the signature.

    Validated numeric and boolean columns go straight to arrays of the signature's dtype
    (what MLflow's cast gives, without its per-column astype); validated text columns get
    the dtype pandas infers for text, as MLflow leaves them. Any other type takes MLflow's
    own cast.
    """

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self.dtypes = _simple_dtypes(schema) if _has_columns(schema) else None

    def __call__(self, data: ModelInput) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            return data
        if self.dtypes is not None:
            dtypes = self.dtypes
            return frame_from_arrays(
                {
                    name: pd.array(values, TEXT_DTYPE)
                    if dtypes[name] is None
                    else np.asarray(values, dtypes[name])
                    for name, values in data.items()
                }
            )
        frame = pd.DataFrame(data)
        if self.schema is None:
            return frame
        cast_frame: pd.DataFrame = cast_df_types_according_to_schema(frame, self.schema)
        return cast_frame


def encode_predictions(rows: list[Any]) -> bytes:
    return orjson.dumps({"predictions": rows}, option=orjson.OPT_SERIALIZE_NUMPY)


def _media_type(content_type: str | None) -> str:
    """The media type, after checking parameters as MLflow does (UTF-8 only, no others)."""
    if not content_type:
        raise UnsupportedMediaTypeError(
            "missing Content-Type; use one of " + ", ".join(SUPPORTED_CONTENT_TYPES)
        )
    mime_type, *parameters = (part.strip() for part in content_type.split(";"))
    mime_type = mime_type.lower()
    if mime_type not in SUPPORTED_CONTENT_TYPES:
        # Name what was sent only when it looks like a media type: it is the caller's text.
        shown = f" '{mime_type}'" if _MEDIA_TYPE.fullmatch(mime_type) else ""
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type{shown}; use one of " + ", ".join(SUPPORTED_CONTENT_TYPES)
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            raise UnsupportedMediaTypeError(
                "unsupported Content-Type parameter; only charset is allowed"
            )
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaTypeError("only the UTF-8 charset is supported")
    return mime_type


def _parse_json(body: bytes, schema: Schema | None) -> ScoringRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedRequestError(f"request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadRequestError(f"the JSON body is {_json_type(payload)}; {_SHAPE_HELP}")

    fields = [field for field in (*INPUT_FIELDS, RECORDS_ALIAS) if field in payload]
    if len(fields) != 1:
        found = ", ".join(f"'{field}'" for field in fields) or "none"
        raise BadRequestError(f"found {len(fields)} input fields ({found}); {_SHAPE_HELP}")
    field = fields[0]
    params = payload.get(PARAMS_FIELD)
    if params is not None and not isinstance(params, dict):
        raise BadRequestError(f"'params' must be a JSON object, got {_json_type(params)}")

    value = payload[field]
    if _has_columns(schema):
        assert schema is not None
        columns = _lean_columns(field, value, schema)
        if columns is not None:
            rows = len(next(iter(columns.values()))) if columns else 0
            if rows == 0:
                raise BadRequestError("the request holds no rows to score")
            check_columns(columns, schema)
            return ScoringRequest(columns, rows, params, batchable=True)
    data = _parse_with_mlflow(field, value, schema)
    check_input(data, schema)
    rows = len(data) if isinstance(data, pd.DataFrame) else 1
    return ScoringRequest(data, rows, params, batchable=isinstance(data, pd.DataFrame))


def _lean_columns(field: str, value: Any, schema: Schema) -> ColumnData | None:
    """Records or a split table as column lists of the signature's columns, or None.

    None sends the body through MLflow's parsers, which explain what is wrong with it.
    """
    names = [str(name) for name in schema.input_names()]
    required = set(schema.required_input_names())
    if field in ("dataframe_records", RECORDS_ALIAS, "instances"):
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            return None
        if not value:
            return {}
        present = [n for n in names if any(n in row for row in value)]
        require_columns(required.difference(present), schema)
        return {name: [row.get(name) for row in value] for name in present}
    if (
        field == "dataframe_split"
        and isinstance(value, dict)
        and set(value)
        <= {
            "columns",
            "data",
            "index",
        }
    ):
        table_columns, table = value.get("columns"), value.get("data")
        if not (isinstance(table_columns, list) and isinstance(table, list)):
            return None
        if not all(isinstance(name, str) for name in table_columns):
            return None
        width = len(table_columns)
        if not all(isinstance(row, list) and len(row) == width for row in table):
            return None
        if not table:
            return {}
        position = {name: index for index, name in enumerate(table_columns)}
        require_columns(required.difference(position), schema)
        return {name: [row[position[name]] for row in table] for name in names if name in position}
    return None


def _parse_with_mlflow(field: str, value: Any, schema: Schema | None) -> Any:
    mlflow_field = "dataframe_records" if field == RECORDS_ALIAS else field
    tensor_field = field in ("instances", "inputs")
    if tensor_field and _has_columns(schema) and isinstance(value, list | dict):
        # Validate what was sent before MLflow casts it (its cast truncates 35.5 to 35).
        check_input(_frame_or_none(value), schema)
    try:
        return infer_and_parse_data({mlflow_field: value}, cast(Schema, schema))
    except (MlflowException, ValueError, TypeError):
        _explain_parse_failure(field, {mlflow_field: value}, schema)


_SIMPLE_DTYPES: dict[object, np.dtype[Any] | None] = {
    DataType.long: np.dtype(np.int64),
    DataType.integer: np.dtype(np.int32),
    DataType.double: np.dtype(np.float64),
    DataType.float: np.dtype(np.float32),
    DataType.boolean: np.dtype(np.bool_),
    DataType.string: None,  # TEXT_DTYPE: pandas infers its string dtype; MLflow's cast keeps it
}


def _simple_dtypes(schema: Schema | None) -> dict[str, np.dtype[Any] | None] | None:
    """Column dtypes when every column is required and of a simple type, else None."""
    specs = schema.inputs if schema is not None else []
    if not specs or not all(
        isinstance(s, ColSpec) and s.required and s.type in _SIMPLE_DTYPES for s in specs
    ):
        return None
    return {str(spec.name): _SIMPLE_DTYPES[spec.type] for spec in specs}


def _has_columns(schema: Schema | None) -> bool:
    return schema is not None and not schema.is_tensor_spec()


def _frame_or_none(value: list[Any] | dict[str, Any]) -> pd.DataFrame | None:
    try:
        return pd.DataFrame(value)
    except (ValueError, TypeError):
        return None  # not tabular: MLflow's parser decides


def _explain_parse_failure(field: str, data: dict[str, Any], schema: Schema | None) -> NoReturn:
    """Turn a failed typed parse into an error that names the problem without values.

    MLflow quotes the offending value when a cast fails; so parse again untyped: if that
    fails too the shape is wrong, otherwise validation names the column.
    """
    try:
        untyped = infer_and_parse_data(data, cast(Schema, None))
    except MlflowException as error:
        raise BadRequestError(f"'{field}' is not valid: {error.message}") from None
    except (ValueError, TypeError):
        raise BadRequestError(f"'{field}' does not describe a table or tensor") from None
    check_input(untyped, schema)
    raise SchemaMismatchError(f"values in '{field}' do not convert to the model's input types")


def _parse_csv(body: bytes, schema: Schema | None) -> pd.DataFrame:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequestError(
            f"CSV body is not valid UTF-8 (byte offset {error.start})"
        ) from None
    if schema is None:
        return _read_csv(text, None)
    try:
        return _read_csv(
            text, dict(zip(map(str, schema.input_names()), schema.pandas_types(), strict=True))
        )
    except ValueError:
        # A value that does not convert to its column's type. Pandas' message quotes the
        # value, so read the text untyped and let validation name the column instead.
        check_input(_read_csv(text, None), schema)
        raise SchemaMismatchError("CSV values do not match the model's input types") from None


def _read_csv(text: str, dtypes: dict[str, Any] | None) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtypes)
    except pd.errors.ParserError as error:
        raise MalformedRequestError(f"CSV body cannot be parsed: {_first_line(error)}") from None
    except pd.errors.EmptyDataError:
        raise BadRequestError("the CSV body holds no columns") from None


def _parse_parquet(body: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(body))
    except Exception as error:  # pyarrow raises many unrelated types for a bad file
        raise MalformedRequestError(
            f"Parquet body cannot be read: {type(error).__name__}"
        ) from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _json_type(value: Any) -> str:
    names = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), "a value")
