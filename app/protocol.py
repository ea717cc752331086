"""MLflow's scoring protocol: request bodies in, `{"predictions": ...}` out.

Accepts what `mlflow models serve` accepts (JSON with exactly one of `dataframe_split`,
`dataframe_records`, `instances`, `inputs`, optional `params`; `text/csv`; Parquet) plus
`{"data": [records]}`, and builds the model input with MLflow's own parsers so the same
body gives the same input as MLflow's server.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import orjson
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types import Schema
from mlflow.utils.proto_json_utils import _get_jsonable_obj, cast_df_types_according_to_schema

from app.errors import (
    BadRequestError,
    MalformedRequestError,
    SchemaMismatchError,
    UnsupportedMediaTypeError,
)
from app.validation import check_input

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SUPPORTED_CONTENT_TYPES = (JSON, CSV, PARQUET)

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
RECORDS_ALIAS = "data"  # `{"data": [...]}`, what many hand-written clients send
_DATAFRAME_FIELDS = ("dataframe_records", "dataframe_split")
PARAMS_FIELD = "params"

_SHAPE_HELP = (
    "send a JSON object with exactly one of "
    + ", ".join(f"'{field}'" for field in (*INPUT_FIELDS, RECORDS_ALIAS))
    + " and optionally 'params'"
)


@dataclass(frozen=True)
class ScoringRequest:
    data: Any  # a DataFrame for tabular formats; tensors stay as MLflow parses them
    params: dict[str, Any] | None
    input_format: str

    @property
    def rows(self) -> int:
        return len(self.data) if hasattr(self.data, "__len__") else 1


def parse_request(body: bytes, content_type: str | None, schema: Schema | None) -> ScoringRequest:
    mime_type = _media_type(content_type)
    if mime_type == JSON:
        return _parse_json(body, schema)
    if mime_type == CSV:
        return ScoringRequest(_parse_csv(body, schema), None, "csv")
    return ScoringRequest(_parse_parquet(body), None, "parquet")


def encode_predictions(predictions: Any) -> bytes:
    """Serialise as MLflow's server does: DataFrames as records, NumPy as lists."""
    jsonable = _get_jsonable_obj(predictions, pandas_orient="records")
    return orjson.dumps({"predictions": jsonable}, option=orjson.OPT_SERIALIZE_NUMPY)


def _media_type(content_type: str | None) -> str:
    """The media type, after checking parameters as MLflow does (UTF-8 only, no others)."""
    if not content_type:
        raise UnsupportedMediaTypeError(
            "missing Content-Type; use one of " + ", ".join(SUPPORTED_CONTENT_TYPES)
        )
    mime_type, *parameters = (part.strip() for part in content_type.split(";"))
    mime_type = mime_type.lower()
    if mime_type not in SUPPORTED_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type '{mime_type[:100]}'; use one of "
            + ", ".join(SUPPORTED_CONTENT_TYPES)
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            raise UnsupportedMediaTypeError(
                f"unsupported Content-Type parameter '{name.strip()[:50]}'; only charset is allowed"
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
        raise BadRequestError(f"the JSON body is a {_json_type(payload)}; {_SHAPE_HELP}")

    fields = [field for field in (*INPUT_FIELDS, RECORDS_ALIAS) if field in payload]
    if len(fields) != 1:
        found = ", ".join(f"'{field}'" for field in fields) or "none"
        raise BadRequestError(f"found {len(fields)} input fields ({found}); {_SHAPE_HELP}")
    field = fields[0]

    params = payload.get(PARAMS_FIELD)
    if params is not None and not isinstance(params, dict):
        raise BadRequestError(f"'params' must be a JSON object, got a {_json_type(params)}")

    mlflow_field = "dataframe_records" if field == RECORDS_ALIAS else field
    value = payload[field]
    if mlflow_field in _DATAFRAME_FIELDS and _has_columns(schema):
        # Check the values as sent, then cast as MLflow would: its cast alone would turn
        # 35.5 into 35 for a long column, or true into 1.0 for a double one, silently.
        untyped = _parse_untyped(field, {mlflow_field: value})
        check_input(untyped, schema)
        return ScoringRequest(cast_df_types_according_to_schema(untyped, schema), params, field)
    if _has_columns(schema) and isinstance(value, list | dict):
        check_input(_frame_or_none(value), schema)
    try:
        data = infer_and_parse_data({mlflow_field: value}, cast(Schema, schema))
    except (MlflowException, ValueError, TypeError):
        _explain_parse_failure(field, {mlflow_field: value}, schema)
    return ScoringRequest(data, params, field)


def _has_columns(schema: Schema | None) -> bool:
    return schema is not None and not schema.is_tensor_spec()


def _frame_or_none(value: list[Any] | dict[str, Any]) -> pd.DataFrame | None:
    """`instances`/`inputs` given as records or columns, as a frame to validate."""
    try:
        return pd.DataFrame(value)
    except (ValueError, TypeError):
        return None  # not tabular: MLflow's parser below decides


def _parse_untyped(field: str, data: dict[str, Any]) -> Any:
    try:
        return infer_and_parse_data(data, cast(Schema, None))
    except MlflowException as error:
        raise BadRequestError(f"'{field}' is not valid: {error.message}") from None
    except (ValueError, TypeError):
        raise BadRequestError(f"'{field}' does not describe a table or tensor") from None


def _explain_parse_failure(field: str, data: dict[str, Any], schema: Schema | None) -> NoReturn:
    """Turn a failed typed parse into an error that names the problem without values.

    MLflow casts columns to the signature's types while parsing and quotes the offending
    value when that fails; so parse again untyped: if that fails too the shape is wrong,
    otherwise validation names the column.
    """
    check_input(_parse_untyped(field, data), schema)
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
        untyped = _read_csv(text, None)
        check_input(untyped, schema)
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
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), "value")
