"""The Open Inference Protocol (V2, the REST protocol of KServe and Triton): request bodies
to model input, model output to response bodies, and the model's metadata.

Coded as Seldon MLServer's MLflow runtime (mlserver-mlflow 1.7.1) codes them, so that its
clients (tritonclient, KServe's client, MLServer's codecs) work unchanged: one input tensor
per signature column (shape `[-1, 1]` in the metadata), text as BYTES, the `pd` content type
for a signature of columns, named tensors (`dict`) or one tensor (`np`) for a tensor
signature; outputs as tensors named after a DataFrame's columns, or one tensor `output-1`.
A request becomes the same model input a `/invocations` request would (column lists for a
signature of columns, checked by app.protocol.validation), so everything behind the parse
is shared. Its cost (rows, cells, columns) is read from the declared shapes and bounded
before any value is converted. Messages name a tensor by its name only when the signature
declares that name, by its position otherwise: never a value the client sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from app.errors import BadRequestError, SchemaMismatchError
from app.protocol.budget import RequestBudget
from app.protocol.frames import has_columns
from app.protocol.parsing import InputContract, ScoringRequest
from app.protocol.validation import NO_ROWS, check_columns, require_columns

# MLServer's content types: a request's (how its tensors become one model input) and an
# input's or output's (how one tensor is read).
PANDAS = "pd"
TENSOR_DICT = "dict"
NUMPY = "np"
STRING = "str"
PANDAS_JSON = "pd_json"
# The name of a lone output tensor, as MLServer's single-tensor codecs name it.
SINGLE_OUTPUT = "output-1"
# Request parameters that are the protocol's, not the model's (MLServer hands the others
# to the model as params).
RESERVED_PARAMETERS = frozenset({"content_type", "headers"})

_INTEGER_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_FLOATS = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
DATATYPES = frozenset({"BOOL", "BYTES", *_INTEGER_RANGES, *_FLOATS})
# A signature's column types as MLServer's MLflow runtime declares them in the metadata.
_COLUMN_DATATYPES: dict[DataType, tuple[str, str]] = {
    DataType.boolean: ("BOOL", NUMPY),
    DataType.integer: ("INT32", NUMPY),
    DataType.long: ("INT64", NUMPY),
    DataType.float: ("FP32", NUMPY),
    DataType.double: ("FP64", NUMPY),
    DataType.string: ("BYTES", STRING),
    DataType.binary: ("BYTES", "base64"),
    DataType.datetime: ("BYTES", "datetime"),
}
_NUMPY_DATATYPES = {
    "bool": "BOOL",
    **{name.lower(): name for name in _INTEGER_RANGES},
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
# A request id is sent back in the answer (the protocol says so) only when it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_DIMENSIONS = 8


@dataclass(frozen=True)
class InferRequest:
    """A V2 inference request as the scorer takes it, and what its answer must carry."""

    scoring: ScoringRequest
    request_id: str | None
    requested_outputs: tuple[str, ...] | None  # None: every output


@dataclass(frozen=True)
class _Tensor:
    label: str  # how messages name it: 'name' when the signature declares it, else inputs[i]
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]  # flat, row-major


def request_content_type(schema: Schema | None) -> str:
    """The request content type a model takes, as mlserver-mlflow derives it."""
    if schema is not None and schema.is_tensor_spec():
        return TENSOR_DICT if schema.has_input_names() else NUMPY
    return PANDAS


def parse_infer_request(
    body: bytes, contract: InputContract, budget: RequestBudget
) -> InferRequest:
    """The model input a V2 body describes; its declared cost is bounded first (`budget`),
    then every value is checked against its tensor's datatype, then against the signature."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError(
            "the request body is not valid JSON (with numbers within 64 bits)"
        ) from None
    if not isinstance(payload, dict):
        raise BadRequestError("the request body must be a JSON object with 'inputs'")
    schema = contract.schema
    if contract.from_type_hints:
        raise BadRequestError(
            "this model's input comes from its Python type hints, which V2 tensors do not "
            "describe: send it to /invocations"
        )
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequestError("'parameters' must be a JSON object")
    _check_content_type(parameters.get("content_type"), schema)
    declared = _declared_names(schema)
    raw_inputs = payload.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequestError("'inputs' must be a non-empty list of tensors")
    heads = [_tensor_head(index, raw, declared) for index, raw in enumerate(raw_inputs)]
    _check_budget(heads, schema, budget)
    tensors = [_with_data(head, raw) for head, raw in zip(heads, raw_inputs, strict=True)]
    params = {k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS} or None
    if has_columns(schema) or schema is None:
        scoring = _columns_request(tensors, schema, params)
    else:
        scoring = _tensors_request(tensors, schema, params)
    return InferRequest(scoring, _request_id(payload.get("id")), _requested(payload))


def _declared_names(schema: Schema | None) -> frozenset[str]:
    if schema is None:
        return frozenset()
    return frozenset(str(name) for name in schema.input_names() if isinstance(name, str))


def _check_content_type(content_type: Any, schema: Schema | None) -> None:
    """Absent, or the model's own: another would hand the model another kind of input."""
    expected = request_content_type(schema)
    if content_type is None or content_type == expected:
        return
    shown = f" '{content_type}'" if content_type in (PANDAS, TENSOR_DICT, NUMPY) else ""
    raise BadRequestError(
        f"request content_type{shown} does not fit this model's signature; it takes "
        f"'{expected}' (or none)"
    )


@dataclass(frozen=True)
class _Head:
    index: int
    label: str
    name: str
    datatype: str
    shape: tuple[int, ...]
    content_type: Any

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def _tensor_head(index: int, raw: Any, declared: frozenset[str]) -> _Head:
    """A tensor's name, datatype and shape, checked before its data is looked at."""
    position = f"inputs[{index}]"
    if not isinstance(raw, dict):
        raise BadRequestError(f"{position} is not a tensor (a JSON object)")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"{position} has no name")
    label = f"input '{name}'" if name in declared else position
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequestError(
            f"{label} has no datatype of the protocol (BOOL, INT8-64, UINT8-64, FP16-64, BYTES)"
        )
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or not 0 < len(shape) <= _MAX_DIMENSIONS
        or not all(type(size) is int and size >= 0 for size in shape)
    ):
        raise BadRequestError(
            f"{label} has no valid shape: a list of 1 to {_MAX_DIMENSIONS} sizes (whole "
            "numbers, 0 or more)"
        )
    parameters = raw.get("parameters") or {}
    content_type = parameters.get("content_type") if isinstance(parameters, dict) else None
    return _Head(index, label, name, str(datatype), tuple(shape), content_type)


def _check_budget(heads: list[_Head], schema: Schema | None, budget: RequestBudget) -> None:
    """Rows, cells and columns from the declared shapes, before any value is read."""
    tensor_input = schema is not None and not has_columns(schema)
    if not tensor_input:
        budget.check_columns(len(heads))
    budget.check_rows(max(head.shape[0] for head in heads))
    budget.check_cells(sum(head.elements for head in heads))


def _with_data(head: _Head, raw: dict[str, Any]) -> _Tensor:
    data = raw.get("data")
    if not isinstance(data, list):
        raise BadRequestError(f"{head.label} has no data (a JSON list)")
    flat = _flatten(data, head)
    _check_values(flat, head)
    if head.content_type not in (None, STRING, NUMPY):
        raise BadRequestError(
            f"{head.label}: only the 'str' and 'np' content types are supported for an input"
        )
    return _Tensor(head.label, head.name, head.datatype, head.shape, flat)


def _flatten(data: list[Any], head: _Head) -> list[Any]:
    """The data row-major and flat; its count must be the shape's, and is never more than
    the shape's while it is read (the budget bounded the shape)."""
    expected = head.elements
    if not any(isinstance(item, list) for item in data):
        flat = data
    else:
        flat = []
        stack: list[Any] = [iter(data)]
        while stack:
            item = next(stack[-1], _END)
            if item is _END:
                stack.pop()
            elif isinstance(item, list):
                if len(stack) > _MAX_DIMENSIONS:
                    raise BadRequestError(f"{head.label} nests its data deeper than its shape")
                stack.append(iter(item))
            else:
                flat.append(item)
                if len(flat) > expected:
                    break
    if len(flat) != expected:
        raise BadRequestError(
            f"{head.label} has shape {list(head.shape)}, which holds {expected} values, "
            f"but its data holds {'more' if len(flat) > expected else len(flat)}"
        )
    return flat


_END = object()


def _check_values(values: list[Any], head: _Head) -> None:
    """Every value is of the tensor's datatype (null stands for a missing float)."""
    datatype = head.datatype
    kinds = set(map(type, values))
    if datatype == "BYTES":
        fits = kinds <= {str}
        expected = "text"
    elif datatype == "BOOL":
        fits = kinds <= {bool}
        expected = "true or false"
    elif datatype in _FLOATS:
        fits = kinds <= {int, float, type(None)}
        expected = "numbers (or null)"
    else:
        low, high = _INTEGER_RANGES[datatype]
        fits = kinds <= {int} and (not values or (low <= min(values) and max(values) <= high))
        expected = f"whole numbers from {low} to {high}"
    if not fits:
        raise BadRequestError(f"{head.label} is {datatype}: its data must be {expected}")


def _columns_request(
    tensors: list[_Tensor], schema: Schema | None, params: dict[str, Any] | None
) -> ScoringRequest:
    """One tensor per column, as MLServer's pandas codec reads them: the signature's
    columns (others are left out, as MLflow leaves unused columns), checked as
    /invocations checks its column lists."""
    names = [str(name) for name in schema.input_names()] if schema is not None else []
    by_name: dict[str, _Tensor] = {}
    for tensor in tensors:
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise SchemaMismatchError(
                f"{tensor.label} has shape {list(tensor.shape)}; a column is [rows] or [rows, 1]"
            )
        if tensor.name in by_name:
            raise BadRequestError(f"{tensor.label} is sent twice")
        by_name[tensor.name] = tensor
    if schema is not None:
        require_columns(set(schema.required_input_names()).difference(by_name), schema)
        kept = {name: by_name[name] for name in names if name in by_name}
    else:
        kept = by_name
    rows = {tensor.shape[0] for tensor in kept.values()}
    if len(rows) > 1:
        raise BadRequestError(f"the columns' row counts differ: {sorted(rows)}")
    row_count = rows.pop() if rows else 0
    if row_count == 0:
        raise BadRequestError(NO_ROWS)
    columns = {name: _column_values(tensor) for name, tensor in kept.items()}
    if schema is not None:
        check_columns(columns, schema)
    return ScoringRequest(columns, row_count, params, batchable=True)


def _column_values(tensor: _Tensor) -> list[Any]:
    """Floats as floats (an INT tensor for a double column is MLServer's cast too)."""
    if tensor.datatype in _FLOATS:
        return [math.nan if value is None else float(value) for value in tensor.data]
    return tensor.data


def _tensors_request(
    tensors: list[_Tensor], schema: Schema, params: dict[str, Any] | None
) -> ScoringRequest:
    """Named tensors (a dict of arrays), or the one tensor of an unnamed tensor signature."""
    arrays = {tensor.name: _array(tensor) for tensor in tensors}
    if not schema.has_input_names():
        if len(tensors) != 1:
            raise BadRequestError("this model takes one input tensor")
        only = arrays[tensors[0].name]
        return ScoringRequest(only, only.shape[0], params, batchable=False)
    declared = _declared_names(schema)
    missing = sorted(declared.difference(arrays))
    if missing:
        raise SchemaMismatchError(
            "missing input tensors: " + ", ".join(f"'{name}'" for name in missing)
        )
    kept = {name: array for name, array in arrays.items() if name in declared}
    rows = next(iter(kept.values())).shape[0]
    return ScoringRequest(kept, rows, params, batchable=False)


def _array(tensor: _Tensor) -> np.ndarray[Any, Any]:
    dtype: Any
    if tensor.datatype == "BYTES":
        dtype = object
    elif tensor.datatype == "BOOL":
        dtype = np.bool_
    elif tensor.datatype in _FLOATS:
        dtype = _FLOATS[tensor.datatype]
    else:
        dtype = np.dtype(tensor.datatype.lower())
    values = [math.nan if value is None else value for value in tensor.data]
    return np.asarray(values, dtype=dtype).reshape(tensor.shape)


def _request_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def _requested(payload: dict[str, Any]) -> tuple[str, ...] | None:
    outputs = payload.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in outputs
    ):
        raise BadRequestError("'outputs' must be a list of objects with a 'name'")
    return tuple(item["name"] for item in outputs)


# --- the answer ----------------------------------------------------------------------------
def encode_infer_response(
    outputs: Any,
    *,
    model_name: str,
    model_version: str | None,
    request: InferRequest,
    declared_types: Mapping[str, DataType],
) -> bytes:
    """The V2 answer for the model's output in MLflow's JSON-able form (DataFrames as
    records): a table as one tensor per column (`pd`), a dict as named tensors (`dict`),
    anything else as one tensor `output-1` (`np`, or `str` for text), as MLServer answers.
    `declared_types` is `output_types(the output signature)`, computed once by the caller.
    Raises TypeError for an output no tensor can hold (the scorer's 500)."""
    content_type, tensors = _output_tensors(outputs, declared_types)
    if request.requested_outputs is not None:
        wanted = set(request.requested_outputs)
        unknown = wanted.difference(tensor["name"] for tensor in tensors)
        if unknown:
            raise BadRequestError(
                f"{len(unknown)} requested output(s) are not among the model's outputs"
            )
        tensors = [tensor for tensor in tensors if tensor["name"] in wanted]
    answer: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:  # absent rather than null, as MLServer answers
        answer["model_version"] = model_version
    if request.request_id is not None:
        answer["id"] = request.request_id
    answer["parameters"] = {"content_type": content_type}
    answer["outputs"] = tensors
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def output_types(schema: Schema | None) -> dict[str, DataType]:
    """The declared type of each named column of the output signature (none for tensors)."""
    if schema is None or schema.is_tensor_spec():
        return {}
    return {
        str(spec.name): spec.type
        for spec in schema.inputs
        if isinstance(spec, ColSpec) and spec.name and isinstance(spec.type, DataType)
    }


def _output_tensors(
    outputs: Any, declared: Mapping[str, DataType]
) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(outputs, list) and outputs and all(isinstance(row, dict) for row in outputs):
        names = list(dict.fromkeys(chain.from_iterable(outputs)))
        columns = [
            _column_tensor(str(name), [row.get(name) for row in outputs], declared.get(str(name)))
            for name in names
        ]
        return PANDAS, columns
    if isinstance(outputs, dict):
        return TENSOR_DICT, [_tensor(str(name), value) for name, value in outputs.items()]
    if isinstance(outputs, list) and outputs and all(isinstance(v, str) for v in outputs):
        return STRING, [_column_tensor(SINGLE_OUTPUT, outputs, None)]
    tensor = _tensor(SINGLE_OUTPUT, outputs)
    return NUMPY, [tensor]


def _column_tensor(name: str, values: list[Any], declared: DataType | None) -> dict[str, Any]:
    """A DataFrame column as MLServer's pandas codec answers it: shape [rows, 1]; text as
    BYTES (`str`), other objects as BYTES of JSON (`pd_json`)."""
    datatype = _datatype_of(values, declared)
    tensor: dict[str, Any] = {"name": name, "shape": [len(values), 1], "datatype": datatype}
    if datatype == "BYTES":
        if all(isinstance(value, str) for value in values):
            tensor["parameters"] = {"content_type": STRING}
        else:
            values = [orjson.dumps(value).decode() for value in values]
            tensor["parameters"] = {"content_type": PANDAS_JSON}
    tensor["data"] = values
    return tensor


def _tensor(name: str, value: Any) -> dict[str, Any]:
    """An array (nested lists) as one tensor: its shape, a rank-1 shape as [n, 1]."""
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        datatype = "BYTES"
        if not all(isinstance(item, str) for item in array.flat):
            raise TypeError("an output tensor holds values that are neither numbers nor text")
    else:
        datatype = _NUMPY_DATATYPES.get(array.dtype.name, "")
        if not datatype:
            raise TypeError(f"an output of dtype {array.dtype.name} has no V2 datatype")
    shape = list(array.shape)
    if len(shape) < 2:
        shape = [*shape, 1]
    tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype}
    tensor["parameters"] = {"content_type": STRING if datatype == "BYTES" else NUMPY}
    flat = array.reshape(-1).tolist()
    if datatype.startswith("FP"):
        flat = [None if isinstance(v, float) and math.isnan(v) else v for v in flat]
    tensor["data"] = flat
    return tensor


# The width a signature's column type names for a JSON number (its numpy width is gone).
_NARROWER_DATATYPES = {DataType.integer: "INT32", DataType.float: "FP32"}


def _datatype_of(values: list[Any], declared: DataType | None) -> str:
    """From the values (JSON-able: the widths of numpy types are gone); the signature's
    type names the width when it fits the values (a float column is FP32)."""
    kinds = {type(value) for value in values if value is not None}
    if kinds and kinds <= {bool}:
        found = "BOOL"
    elif kinds and kinds <= {int}:
        found = "INT64"
    elif kinds <= {int, float} and kinds:
        found = "FP64"
    else:
        found = "FP64" if not kinds else "BYTES"
    narrower = _NARROWER_DATATYPES.get(declared)  # type: ignore[arg-type]
    if narrower is not None and found in ("INT64", "FP64") and found[:2] == narrower[:2]:
        return narrower
    return found


# --- metadata ------------------------------------------------------------------------------
def model_metadata(
    name: str, version: str | None, inputs: Schema | None, outputs: Schema | None
) -> dict[str, Any]:
    """GET /v2/models/{name}: the signature as MLServer's MLflow runtime describes it."""
    metadata: dict[str, Any] = {
        "name": name,
        "versions": [version] if version else [],
        "platform": "",
        "inputs": _metadata_tensors(inputs, "input-"),
        "outputs": _metadata_tensors(outputs, "output-"),
        "parameters": {"content_type": request_content_type(inputs)},
    }
    return metadata


def _metadata_tensors(schema: Schema | None, prefix: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    described = []
    for index, spec in enumerate(schema.inputs):
        if isinstance(spec, TensorSpec):
            datatype = _NUMPY_DATATYPES.get(np.dtype(spec.type).name, "BYTES")
            shape = list(spec.shape)
            content_type = NUMPY
        elif isinstance(spec.type, DataType):
            datatype, content_type = _COLUMN_DATATYPES[spec.type]
            shape = [-1, 1]
        else:  # Array, Object, Map, Any: JSON in BYTES
            datatype, content_type, shape = "BYTES", PANDAS_JSON, [-1, 1]
        described.append(
            {
                "name": spec.name or f"{prefix}{index}",
                "datatype": datatype,
                "shape": shape,
                "parameters": {"content_type": content_type},
            }
        )
    return described
