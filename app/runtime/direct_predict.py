"""Predict without MLflow's second schema pass when that pass would change nothing.

`PyFuncModel.predict` enforces the signature on every call: for a small model that is a
large share of a 1-row request, and a copy of the frame. The server has already checked
the request against the same signature (app.protocol.validation) and built a frame of the
signature's own dtypes (app.protocol.parsing). For a frame that holds exactly the signature's
columns, in its order, each of a dtype MLflow takes as it is, its enforcement is an
identity: `_enforce_mlflow_datatype` returns every column unchanged and the result is the
same columns in a new frame. Such frames go straight to the model's predict function;
params still pass MLflow's own params enforcement, under the same prediction context.
Any other input, and any model this cannot vouch for, takes `PyFuncModel.predict`.
tests/app/test_direct_predict.py holds the identity and the equal predictions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import DataType, ParamSchema

from app.mlflow_compat import (
    block_dtypes,
    call_in_prediction_context,
    enforce_params,
    predict_function,
    signature_from_type_hints,
    type_hint_from_example,
)
from app.protocol.frames import column_labels
from app.protocol.validation import plain_type

DtypeCheck = Callable[[Any], bool]


def _is_text(dtype: Any) -> bool:
    return dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype)


def _exactly(numpy_dtype: np.dtype[Any]) -> DtypeCheck:
    return lambda dtype: dtype == numpy_dtype


# Per signature type, the dtypes MLflow's enforcement returns unchanged (a subset of its
# early returns: the exact numpy dtype, or text as object or pandas strings).
_UNCHANGED: dict[DataType | None, DtypeCheck] = {
    DataType.boolean: _exactly(np.dtype(np.bool_)),
    DataType.integer: _exactly(np.dtype(np.int32)),
    DataType.long: _exactly(np.dtype(np.int64)),
    DataType.float: _exactly(np.dtype(np.float32)),
    DataType.double: _exactly(np.dtype(np.float64)),
    DataType.string: _is_text,
}


class DirectPredict:
    """The model's predict function, for frames MLflow's enforcement would pass unchanged."""

    def __init__(
        self,
        predict_fn: Callable[..., Any],
        columns: list[str],
        checks: list[DtypeCheck],
        params_schema: ParamSchema | None,
        model_id: str | None,
    ) -> None:
        self._predict_fn = predict_fn
        self._columns = columns
        self._labels = column_labels(tuple(columns))  # the Index frames of these columns share
        self._checks = checks
        self._params_schema = params_schema
        self._model_id = model_id

    def accepts(self, data: Any) -> bool:
        if not isinstance(data, pd.DataFrame):
            return False
        if data.columns is not self._labels and data.columns.tolist() != self._columns:
            return False
        checks = self._checks
        return all(
            all(check(dtype) for check in {checks[position] for position in positions})
            for dtype, positions in block_dtypes(data)
        )

    def __call__(self, frame: pd.DataFrame, params: dict[str, Any] | None) -> Any:
        params = enforce_params(params, self._params_schema)
        return call_in_prediction_context(self._model_id, self._predict_fn, frame, params=params)


def build_direct_predict(model: PyFuncModel) -> DirectPredict | None:
    """A DirectPredict when the signature is plain named columns, else None."""
    metadata = model.metadata
    schema = metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    # Signatures from type hints are validated inside predict, and dependency schemas go
    # into the prediction context: both stay with PyFuncModel.predict.
    if signature_from_type_hints(model) or type_hint_from_example(model):
        return None
    if "dependencies_schemas" in (metadata.metadata or {}):
        return None
    specs = schema.inputs
    types = [plain_type(spec) for spec in specs]
    if not all(data_type in _UNCHANGED for data_type in types):
        return None
    predict_fn = predict_function(model)
    if predict_fn is None:
        return None
    params_arg = inspect.signature(predict_fn).parameters.get("params")
    if params_arg is None or params_arg.kind == inspect.Parameter.VAR_KEYWORD:
        return None  # PyFuncModel.predict calls such functions differently
    return DirectPredict(
        predict_fn,
        columns=[str(spec.name) for spec in specs],
        checks=[_UNCHANGED[cast(DataType, data_type)] for data_type in types],
        params_schema=metadata.get_params_schema(),
        model_id=model.model_id,
    )
