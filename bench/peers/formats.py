"""Each peer's request format, built from the same frame, and its answer, read back as rows.

The bodies are what each server's own clients send: MLflow's `dataframe_split` JSON (ours
and `mlflow models serve`), the V2 inference protocol (MLServer and KServe: one input per
column, strings as BYTES, the request's `content_type` "pd" for MLServer's pandas codec and
each string input's "str"), and BentoML's JSON (the API's argument by name, a DataFrame as
its default `records` orient). Every answer is read back as a list of rows, one dict per
prediction, so `bench.verify` compares them field by field.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.payloads import make_split_body

# The argument of the BentoML service's API (bench/peers/bentoml_service.py): the JSON key.
BENTOML_ARGUMENT = "frame"
# V2 datatypes by pandas dtype kind: signed and unsigned integers, floats, booleans.
_V2_DATATYPES = {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL"}


class AnswerFormatError(ValueError):
    """An answer that is not the shape its protocol promises."""


def v2_datatype(column: pd.Series[Any]) -> str:
    """The V2 datatype of a column; anything not numeric or boolean travels as BYTES."""
    return _V2_DATATYPES.get(column.dtype.kind, "BYTES")


def mlflow_body(frame: pd.DataFrame) -> bytes:
    return make_split_body(frame)


def v2_body(frame: pd.DataFrame) -> bytes:
    inputs = []
    for name in frame.columns:
        column = frame[name]
        datatype = v2_datatype(column)
        tensor: dict[str, Any] = {
            "name": str(name),
            "shape": [len(column)],
            "datatype": datatype,
            "data": column.tolist(),
        }
        if datatype == "BYTES":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def bentoml_body(frame: pd.DataFrame) -> bytes:
    return json.dumps({BENTOML_ARGUMENT: frame.to_dict(orient="records")}).encode()


def _rows(value: Any, protocol: str) -> list[dict[str, Any]]:
    if not (isinstance(value, list) and all(isinstance(row, dict) for row in value)):
        raise AnswerFormatError(f"{protocol}: predictions are not a list of rows")
    return value


def mlflow_rows(answer: bytes) -> list[dict[str, Any]]:
    """`{"predictions": [{column: value}, ...]}`: a DataFrame's rows."""
    decoded = json.loads(answer)
    if not isinstance(decoded, dict) or "predictions" not in decoded:
        raise AnswerFormatError("MLflow JSON: no `predictions`")
    return _rows(decoded["predictions"], "MLflow JSON")


def v2_rows(answer: bytes) -> list[dict[str, Any]]:
    """`{"outputs": [{"name", "shape", "datatype", "data"}, ...]}`, one output per column
    (MLServer's pandas codec and KServe's DataFrame response both answer so)."""
    decoded = json.loads(answer)
    outputs = decoded.get("outputs") if isinstance(decoded, dict) else None
    if not isinstance(outputs, list) or not outputs:
        raise AnswerFormatError("V2: no `outputs`")
    columns = {}
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if not isinstance(data, list):
            raise AnswerFormatError("V2: an output without a `data` list")
        columns[str(output["name"])] = data
    lengths = {len(data) for data in columns.values()}
    if len(lengths) != 1:
        raise AnswerFormatError(f"V2: outputs of different lengths {sorted(lengths)}")
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def bentoml_rows(answer: bytes) -> list[dict[str, Any]]:
    """A DataFrame as BentoML returns it: its rows (`records` orient)."""
    return _rows(json.loads(answer), "BentoML JSON")
