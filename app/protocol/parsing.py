"""MLflow's scoring protocol: request bodies in, model input out.

Accepts what `mlflow models serve` accepts, decided the way it decides: JSON in UTF-8,
UTF-16 or UTF-32 (as `json.loads` reads bytes); unwrapped LLM requests (`messages`,
`prompt`, `input`) first; for models whose signature comes from type hints, `inputs`
handed over as sent (and a CSV or Parquet table as read); otherwise JSON with exactly one
of `dataframe_split`, `dataframe_records`, `instances`, `inputs` (plus optional `params`),
`text/csv` or Parquet. `{"data": [records]}` is accepted too. Tabular JSON for a signature
of plain columns takes a lean path: records become column lists, checked value by value,
and the DataFrame is built once per batch with the signature's dtypes. Every other shape
goes through MLflow's own parsers, so the model sees what MLflow's server would give it.
Values MLflow would change silently (35.5 into a long column, true into a double) are
refused first (app.protocol.validation).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn, cast

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types import ParamSchema, Schema

from app.errors import (
    BadRequestError,
    MalformedRequestError,
    RequestTooLargeError,
    SchemaMismatchError,
    UnsupportedMediaTypeError,
)
from app.mlflow_compat import is_unified_llm_input, split_llm_input
from app.protocol.budget import RequestBudget
from app.protocol.frames import (
    FLOAT_DTYPES,
    ColumnData,
    ModelInput,
    column_labels,
    frame_from_matrix,
    has_columns,
    simple_dtypes,
)
from app.protocol.json_outline import Member
from app.protocol.validation import (
    NO_ROWS,
    check_columns,
    check_input,
    require_columns,
)

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SUPPORTED_CONTENT_TYPES = (JSON, CSV, PARQUET)

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
RECORDS_ALIAS = "data"  # `{"data": [...]}`, what many hand-written clients send
PARAMS_FIELD = "params"

# A media type's shape: only text of this shape is quoted back in a 415's message.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_SHAPE_HELP = (
    "send a JSON object with exactly one of "
    + ", ".join(f"'{field}'" for field in (*INPUT_FIELDS, RECORDS_ALIAS))
    + " and optionally 'params'"
)


@dataclass(frozen=True)
class InputContract:
    """What the model says about its input: the signature and how MLflow hands data over."""

    schema: Schema | None
    params_schema: ParamSchema | None = None
    # MLflow 3 type-hinted models get the `inputs` value as sent, validated inside predict.
    from_type_hints: bool = False

    @functools.cached_property
    def number_table(self) -> tuple[list[str], np.dtype[Any]] | None:
        """The column names and dtype when every column is a required double (or every one
        a float): tables of plain numbers for such a model are read as one array."""
        dtypes = simple_dtypes(self.schema) if has_columns(self.schema) else None
        kinds = set(dtypes.values()) if dtypes else set()
        if len(kinds) != 1 or not dtypes:
            return None
        dtype = kinds.pop()
        return (list(dtypes), dtype) if dtype in FLOAT_DTYPES else None


@dataclass(frozen=True)
class ScoringRequest:
    data: ModelInput | Any  # column lists or a DataFrame; other shapes as MLflow parses them
    rows: int
    params: dict[str, Any] | None
    # True for the lean path's validated columns and for DataFrames: what the batcher can
    # combine. Other parsed shapes (tensors, lists, dicts) are scored alone.
    batchable: bool
    # An unwrapped LLM request is answered with the bare output, as MLflow answers it.
    unwrapped: bool = False


def parse_request(
    body: bytes,
    content_type: str | None,
    contract: InputContract,
    budget: RequestBudget | None = None,
    decoded: Callable[[], None] = lambda: None,
) -> ScoringRequest:
    """The request as the model takes it. With a budget, the table the body describes is
    bounded before it is built (see app.protocol.budget). `decoded` is called once the body is
    decoded, before its values are checked against the signature (a stage boundary)."""
    mime_type = _media_type(content_type)
    if mime_type == JSON:
        return _parse_json(body, contract, budget, decoded)
    schema = contract.schema
    parse = _parse_csv if mime_type == CSV else _parse_parquet
    frame = parse(body, schema, budget)
    decoded()
    if contract.from_type_hints:
        # MLflow hands such a model the table as read (its predict converts and validates
        # it): only a table without rows is refused, as that predict fails on it.
        check_input(frame, None)
        return ScoringRequest(frame, len(frame), None, batchable=False)
    check_input(frame, schema)
    return ScoringRequest(frame, len(frame), None, batchable=True)


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


def _as_utf8(body: bytes) -> bytes:
    """The JSON body in UTF-8. MLflow's server reads bytes with `json.loads`, which takes
    UTF-16 and UTF-32 (told apart by a byte order mark or by where the zero bytes are) and
    a UTF-8 byte order mark: so do we, through the same detection."""
    encoding = json.detect_encoding(body)
    if encoding == "utf-8":
        return body
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:
        raise MalformedRequestError(f"request body is not valid {encoding} text") from None


def _load_json(body: bytes) -> tuple[Any, bool]:
    """The payload, and whether it needed Python's parser: orjson first, then Python's for
    what only it takes, as MLflow's server reads it: the NaN and Infinity literals that
    Python clients (MLflow's own among them) send for missing and infinite floats, and
    surrogates. Numbers that do not fit a double or a 64-bit integer are refused rather
    than rounded."""
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError as error:
        try:
            return json.loads(body, parse_float=_finite_float, parse_int=_int64), True
        except (ValueError, RecursionError):
            raise MalformedRequestError(f"request body is not valid JSON: {error}") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number beyond the range of a double")
    return value


def _int64(text: str) -> int:
    if len(text) > 20 or not -(2**63) <= int(text) < 2**64:
        raise ValueError("an integer beyond 64 bits")
    return int(text)


def _parse_json(
    body: bytes, contract: InputContract, budget: RequestBudget | None, decoded: Callable[[], None]
) -> ScoringRequest:
    body = _as_utf8(body)
    if budget is not None:
        budget.check_json_bytes(body, _bounded_field)
    payload, has_literals = _load_json(body)
    if not isinstance(payload, dict):
        raise BadRequestError(f"the JSON body is {_json_type(payload)}; {_SHAPE_HELP}")
    if is_unified_llm_input(payload):
        # MLflow's params here are a dict, empty when no declared param was sent.
        data, llm_params = split_llm_input(payload, contract.params_schema)
        return ScoringRequest(data, 1, llm_params, batchable=False, unwrapped=True)

    params = payload.get(PARAMS_FIELD)
    if params is not None and not isinstance(params, dict):
        raise BadRequestError(f"'params' must be a JSON object, got {_json_type(params)}")
    field, value = _input_field(payload)
    schema = contract.schema
    if budget is not None:
        tensor = schema is not None and schema.is_tensor_spec()
        budget.check_json(value, tensor=tensor or contract.from_type_hints)
    if contract.from_type_hints:
        if field != "inputs":
            raise SchemaMismatchError(
                "this model's signature comes from its type hints: send its input as 'inputs'"
            )
        rows = len(value) if isinstance(value, list) else 1
        return ScoringRequest(value, rows, params, batchable=False)

    # NaN literals are missing values: MLflow's path and check_input see them as such.
    if has_columns(schema) and not has_literals:
        assert schema is not None
        table = _number_table(field, value, contract)
        if table is not None:
            return ScoringRequest(table, len(table), params, batchable=True)
        columns = _lean_columns(field, value, schema)
        if columns is not None:
            rows = len(next(iter(columns.values()))) if columns else 0
            if rows == 0:
                raise BadRequestError(NO_ROWS)
            decoded()
            check_columns(columns, schema)
            return ScoringRequest(columns, rows, params, batchable=True)
    decoded()  # MLflow's parser checks and converts in one pass: all of it is validation
    data = _parse_with_mlflow(field, value, schema)
    check_input(data, schema)
    rows = len(data) if isinstance(data, pd.DataFrame | list) else 1
    return ScoringRequest(data, rows, params, batchable=isinstance(data, pd.DataFrame))


def _bounded_field(members: dict[str, Member]) -> str | None:
    """The member the budget bounds before the parse: the input field, picked as the
    parse picks it; None where the parse answers otherwise (unwrapped LLM input is no
    table, a request without exactly one input field is a 400)."""
    if is_unified_llm_input(members):
        return None
    try:
        return _field_name(members)
    except BadRequestError:
        return None


def _field_name(payload: Mapping[str, Any]) -> str:
    """The one input field of a wrapped request: one of INPUT_FIELDS, or else `data`."""
    fields = [field for field in INPUT_FIELDS if field in payload]
    if not fields and RECORDS_ALIAS in payload:
        return RECORDS_ALIAS
    if len(fields) != 1:
        found = ", ".join(f"'{field}'" for field in fields) or "none"
        raise BadRequestError(f"found {len(fields)} input fields ({found}); {_SHAPE_HELP}")
    return fields[0]


def _input_field(payload: dict[str, Any]) -> tuple[str, Any]:
    """The one input field of a wrapped request, with `data` read as `dataframe_records`."""
    field = _field_name(payload)
    if field != RECORDS_ALIAS:
        return field, payload[field]
    records = payload[RECORDS_ALIAS]
    if isinstance(records, list) and all(isinstance(row, dict) for row in records):
        return "dataframe_records", records
    raise BadRequestError(
        "'data' must be a list of records (JSON objects); send a table with columns "
        "as 'dataframe_split'"
    )


def _number_table(field: str, value: Any, contract: InputContract) -> pd.DataFrame | None:
    """A split table of plain numbers (no nulls, text or booleans) in the signature's column
    order, for a model whose columns are all doubles (or all floats), as one array: a wide
    request is then checked and converted at C speed, not column by column. None leaves the
    request to the column-wise path, which also explains what is wrong with it."""
    plan = contract.number_table
    if plan is None or field != "dataframe_split" or not isinstance(value, dict):
        return None
    names, dtype = plan
    rows = value.get("data")
    if value.get("columns") != names or not isinstance(rows, list) or not rows:
        return None
    if not set(value) <= {"columns", "data", "index"}:
        return None
    width = len(names)
    if not all(type(row) is list and len(row) == width for row in rows):
        return None
    if not set(map(type, chain.from_iterable(rows))) <= {int, float}:
        return None
    try:
        values = np.fromiter(chain.from_iterable(rows), dtype, count=len(rows) * width)
    except (ValueError, TypeError, OverflowError):
        return None
    return frame_from_matrix(values.reshape(len(rows), width).T, column_labels(tuple(names)))


def _lean_columns(field: str, value: Any, schema: Schema) -> ColumnData | None:
    """Records or a split table as column lists of the signature's columns, or None.

    None sends the body through MLflow's parsers, which explain what is wrong with it.
    """
    names = [str(name) for name in schema.input_names()]
    required = set(schema.required_input_names())
    if field in ("dataframe_records", "instances"):
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
        and set(value) <= {"columns", "data", "index"}
    ):
        table_columns, table = value.get("columns"), value.get("data")
        if not (isinstance(table_columns, list) and isinstance(table, list)):
            return None
        if not all(isinstance(name, str) for name in table_columns):
            return None
        if len(set(table_columns)) != len(table_columns):
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
    if has_columns(schema):
        assert schema is not None
        # Validate what was sent before MLflow casts it (its cast truncates 35.5 to 35).
        check_input(_untyped_table(field, value, schema), schema)
    try:
        return infer_and_parse_data({field: value}, cast(Schema, schema))
    except (MlflowException, ValueError, TypeError, OverflowError):
        _explain_parse_failure(field, {field: value}, schema)


def _untyped_table(field: str, value: Any, schema: Schema) -> pd.DataFrame | None:
    """The table a request describes, values as sent; None when it is no table of columns
    (a list of rows: MLflow's parser decides). A list of scalars is the column of a
    one-column model, as MLflow reads it."""
    if field == "dataframe_split":
        try:
            untyped = infer_and_parse_data({field: value}, cast(Schema, None))
        except (MlflowException, ValueError, TypeError, OverflowError):
            return None
        return untyped if isinstance(untyped, pd.DataFrame) else None
    records = isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)
    if records or (field in ("inputs", "instances") and isinstance(value, dict)):
        return _frame_or_none(value)
    names = schema.input_names()
    scalars = isinstance(value, list) and not any(isinstance(v, list | dict) for v in value)
    if field in ("inputs", "instances") and scalars and len(names) == 1:
        return _frame_or_none({names[0]: value})
    return None


def _frame_or_none(value: Any) -> pd.DataFrame | None:
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
        raise BadRequestError(f"'{field}' is not valid: {_first_line(error)}") from None
    except (ValueError, TypeError, OverflowError):
        raise BadRequestError(f"'{field}' does not describe a table or tensor") from None
    check_input(untyped, schema)
    raise SchemaMismatchError(f"values in '{field}' do not convert to the model's input types")


def _parse_csv(body: bytes, schema: Schema | None, budget: RequestBudget | None) -> pd.DataFrame:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequestError(
            f"CSV body is not valid UTF-8 (byte offset {error.start})"
        ) from None
    if budget is not None:
        budget.check_columns(_csv_header_width(text))
    if schema is None:
        return _read_csv(text, None)
    try:
        # MLflow's own dtypes: an unnamed column's is keyed by position, as pandas reads it.
        dtypes = dict(zip(schema.input_names(), schema.pandas_types(), strict=True))
    except MlflowException:
        raise BadRequestError("CSV cannot be read for this model's input (tensors)") from None
    try:
        return _read_csv(text, dtypes)
    except (ValueError, TypeError, OverflowError):
        # A value that does not convert to its column's type. Pandas' message quotes the
        # value, so read the text untyped and let validation name the column instead.
        check_input(_read_csv(text, None), schema)
        raise SchemaMismatchError("CSV values do not match the model's input types") from None


def _read_csv(text: str, dtypes: dict[str | int, Any] | None) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtypes)
    except pd.errors.ParserError as error:
        raise MalformedRequestError(f"CSV body cannot be parsed: {_first_line(error)}") from None
    except pd.errors.EmptyDataError:
        raise BadRequestError("the CSV body holds no columns") from None


def _csv_header_width(text: str) -> int:
    """Fields in the header line (the first line with text, as pandas skips blank ones)."""
    start = len(text) - len(text.lstrip("\r\n"))
    end = text.find("\n", start)
    header = text[start : end if end >= 0 else len(text)]
    try:
        return len(next(csv.reader([header]), []))
    except csv.Error:
        return 0  # pandas' parser explains what is wrong with it


def _parse_parquet(
    body: bytes, schema: Schema | None, budget: RequestBudget | None
) -> pd.DataFrame:
    try:
        source = pq.ParquetFile(io.BytesIO(body))
        if budget is not None:
            # From the footer, before any column is decoded.
            metadata = source.metadata
            decoded = sum(
                metadata.row_group(index).total_byte_size
                for index in range(metadata.num_row_groups)
            )
            budget.check_parquet(metadata.num_rows, metadata.num_columns, decoded)
            budget.check_decoded_bytes(_dictionary_text_bytes(body, metadata))
        return pd.read_parquet(io.BytesIO(body))
    except RequestTooLargeError:
        raise
    except Exception as error:  # pyarrow raises many unrelated types for a bad file
        raise MalformedRequestError(
            f"Parquet body cannot be read: {type(error).__name__}"
        ) from None


def _dictionary_text_bytes(body: bytes, metadata: Any) -> int:
    """What the text columns decode to, counted without decoding them.

    The footer counts a dictionary-encoded value once; decoding copies it into every row
    that refers to it (a 5 KB file of 1000 rows of one 100 KB string decodes to 100 MB).
    So the text columns are read as dictionaries and each row's value length summed.
    """
    schema = metadata.schema
    names = [
        schema.column(index).path
        for index in range(metadata.num_columns)
        if schema.column(index).physical_type == "BYTE_ARRAY"
        and schema.column(index).max_repetition_level == 0
        and "." not in schema.column(index).path
    ]
    if not names:
        return 0
    table = pq.ParquetFile(io.BytesIO(body), read_dictionary=names).read(columns=names)
    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
            else:
                lengths = pc.binary_length(chunk)
            total += pc.sum(lengths).as_py() or 0
    return total


def _first_line(error: Exception) -> str:
    text = error.message if isinstance(error, MlflowException) else str(error)
    return text.splitlines()[0][:200] if text else type(error).__name__


def _json_type(value: Any) -> str:
    names = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), "a value")
