"""The models and V2 requests the Open Inference Protocol conformance run sends to MLServer
and to ours.

The models are the conformance zoo's own (tests/conformance/zoo.py), each saved with a
signature that declares its outputs too: MLServer's MLflow runtime 1.7.1 does not load a
model whose signature has inputs only (`to_metadata_tensors` reads `signature.outputs`),
and it stops the whole server when one model fails to load. The demo model joins them in
the test, from the test registry.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]  # cloudpickle ships no type information
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from tests.conformance import zoo

DEMO = "demo"
AB_A = [1, 2, 3]
AB_B = [0.5, 1.5, 2.5]


@dataclass(frozen=True)
class V2Model:
    name: str
    build: Callable[[Path], None]
    # case name -> the V2 request body (a JSON value, or bytes sent as they are)
    cases: dict[str, Any]


def tensor(
    name: str, datatype: str, data: list[Any], shape: list[int] | None = None
) -> dict[str, Any]:
    """One input tensor as MLServer's clients send it (a column: shape [rows, 1])."""
    described: dict[str, Any] = {
        "name": name,
        "datatype": datatype,
        "shape": shape if shape is not None else [len(data), 1],
        "data": data,
    }
    if datatype == "BYTES":
        described["parameters"] = {"content_type": "str"}
    return described


def frame_request(*inputs: dict[str, Any], content_type: str | None = "pd") -> dict[str, Any]:
    request: dict[str, Any] = {"inputs": list(inputs)}
    if content_type is not None:
        request["parameters"] = {"content_type": content_type}
    return request


def _save(path: Path, model: PythonModel, signature: ModelSignature) -> None:
    cloudpickle.register_pickle_by_value(zoo)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            path, python_model=model, signature=signature, pip_requirements=zoo.REQUIREMENTS
        )


def _ab_signature(outputs: Schema) -> ModelSignature:
    return ModelSignature(inputs=zoo.AB_SIGNATURE.inputs, outputs=outputs)


def _python(model: PythonModel, signature: ModelSignature) -> Callable[[Path], None]:
    return lambda path: _save(path, model, signature)


def _sklearn_logreg(path: Path) -> None:
    zoo._sklearn_logreg_with_signature(path)


def _ab_cases() -> dict[str, Any]:
    a, b = AB_A, AB_B
    return {
        "columns": frame_request(tensor("a", "INT64", a), tensor("b", "FP64", b)),
        "no_content_type": frame_request(
            tensor("a", "INT64", a), tensor("b", "FP64", b), content_type=None
        ),
        "flat_shapes": frame_request(tensor("a", "INT64", a, [3]), tensor("b", "FP64", b, [3])),
        "one_row": frame_request(tensor("a", "INT64", a[:1]), tensor("b", "FP64", b[:1])),
        "with_id": {
            **frame_request(tensor("a", "INT64", a), tensor("b", "FP64", b)),
            "id": "request-7",
        },
        "undeclared_parameter": {
            "inputs": [tensor("a", "INT64", a), tensor("b", "FP64", b)],
            "parameters": {"content_type": "pd", "threshold": 0.5},
        },
        "columns_reordered": frame_request(tensor("b", "FP64", b), tensor("a", "INT64", a)),
        "int_for_double": frame_request(tensor("a", "INT64", a), tensor("b", "INT64", [1, 2, 3])),
        "extra_input": frame_request(
            tensor("a", "INT64", a), tensor("b", "FP64", b), tensor("c", "FP64", b)
        ),
        "nested_data": frame_request(
            tensor("a", "INT64", [[1], [2], [3]]), tensor("b", "FP64", [[0.5], [1.5], [2.5]])
        ),
        "decimal_for_long": frame_request(tensor("a", "FP64", [1.5, 2, 3]), tensor("b", "FP64", b)),
        "missing_input": frame_request(tensor("a", "INT64", a)),
        "text_for_int64": frame_request(
            tensor("a", "INT64", ["x", "y", "z"]), tensor("b", "FP64", b)
        ),
        "shape_mismatch": frame_request(tensor("a", "INT64", a, [4, 1]), tensor("b", "FP64", b)),
        "unknown_datatype": frame_request(tensor("a", "INT65", a), tensor("b", "FP64", b)),
        "no_inputs": {"inputs": []},
        "not_json": b'{"inputs": [',
        "rows_past_the_limit": frame_request(
            tensor("a", "INT64", [1] * (zoo.ROWS_LIMIT + 1)),
            tensor("b", "FP64", [0.5] * (zoo.ROWS_LIMIT + 1)),
        ),
    }


def _text_cases() -> dict[str, Any]:
    return {
        "text": frame_request(tensor("text", "BYTES", ["a", "bcd"])),
        "numbers_for_text": frame_request(tensor("text", "INT64", [1, 2])),
    }


def _iris_cases() -> dict[str, Any]:
    return {
        "columns": frame_request(
            tensor("sepal_length", "FP64", [5.1, 6.2]), tensor("sepal_width", "FP64", [3.5, 2.9])
        ),
        "missing_input": frame_request(tensor("sepal_length", "FP64", [5.1, 6.2])),
    }


def _tensor_cases() -> dict[str, Any]:
    left = {"name": "left", "datatype": "FP64", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}
    right = {"name": "right", "datatype": "FP64", "shape": [2, 2], "data": [0.5, 0.5, 1.5, 2.5]}
    return {
        "named_tensors": {"inputs": [left, right]},
        "named_tensors_dict": {"inputs": [left, right], "parameters": {"content_type": "dict"}},
        "missing_tensor": {"inputs": [left]},
    }


def demo_cases(valid: dict[str, Any], risky: dict[str, Any]) -> dict[str, Any]:
    """The demo model's requests: its applicants, one input per column."""
    rows = pd.DataFrame([valid, risky])

    def columns(frame: pd.DataFrame) -> dict[str, Any]:
        inputs = []
        for name in frame.columns:
            values = frame[name].tolist()
            kind = frame[name].dtype.kind
            datatype = {"i": "INT64", "f": "FP64", "b": "BOOL"}.get(kind, "BYTES")
            inputs.append(tensor(str(name), datatype, values))
        return frame_request(*inputs)

    missing = columns(rows)
    missing["inputs"] = missing["inputs"][1:]
    return {
        "one_row": columns(rows.head(1)),
        "two_rows": columns(rows),
        "missing_input": missing,
    }


TENSOR_SIGNATURE = ModelSignature(
    inputs=zoo.TENSOR_SIGNATURE.inputs,
    outputs=Schema(
        [
            TensorSpec(np.dtype(np.float64), (-1,), "left"),
            TensorSpec(np.dtype(np.float64), (-1,), "right"),
        ]
    ),
)


def build_v2_zoo() -> list[V2Model]:
    """The non-demo models, one per kind of output and input the runtime codes apart."""
    frame = pd.DataFrame({"a": AB_A, "b": AB_B})
    return [
        V2Model("sklearn_logreg", _sklearn_logreg, _iris_cases()),
        V2Model(
            "frame_output",
            _python(
                zoo.ReturnsFrame(),
                _ab_signature(
                    Schema(
                        [
                            ColSpec(DataType.double, "total"),
                            ColSpec(DataType.string, "label"),
                            ColSpec(DataType.boolean, "flag"),
                        ]
                    )
                ),
            ),
            _ab_cases(),
        ),
        V2Model(
            "list_of_str_output",
            _python(zoo.ReturnsListOfStr(), _ab_signature(Schema([ColSpec(DataType.string)]))),
            {name: _ab_cases()[name] for name in ("columns", "one_row")},
        ),
        V2Model(
            "ndarray_output",
            _python(
                zoo.ReturnsArray(),
                infer_signature(
                    frame.astype({"a": "int64"}), zoo.ReturnsArray().predict(None, frame)
                ),
            ),
            {name: _ab_cases()[name] for name in ("columns", "one_row")},
        ),
        V2Model(
            "text_column",
            _python(
                zoo.TextColumn(),
                ModelSignature(
                    inputs=Schema([ColSpec(DataType.string, "text")]),
                    outputs=Schema([ColSpec(DataType.long)]),
                ),
            ),
            _text_cases(),
        ),
        V2Model("named_tensors", _python(zoo.TensorSum(), TENSOR_SIGNATURE), _tensor_cases()),
    ]
