"""Predict without MLflow's second schema pass when that pass would change nothing.

`PyFuncModel.predict` enforces the signature on every call: for the demo model that costs
about 0.5 ms and a copy of the frame, a fifth of a 1-row request. The server has already
checked the request against the same signature (app.validation) and built a frame of the
signature's own dtypes (app.protocol). For a frame that holds exactly the signature's
columns, in its order, each of a dtype MLflow takes as it is, its enforcement is an
identity: `_enforce_mlflow_datatype` returns every column unchanged and the result is the
same columns in a new frame. Such frames go straight to the model's predict function;
params still pass MLflow's own params enforcement, under the same prediction context.
Any other input, and any model this cannot vouch for, takes `PyFuncModel.predict`.

MLflow private names used here are pinned with MLflow in requirements.txt, and
tests/app/test_direct_predict.py holds the identity and the equal predictions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models.utils import _enforce_params_schema
from mlflow.pyfunc import PyFuncModel
from mlflow.pyfunc.context import Context, set_prediction_context
from mlflow.types import ColSpec, DataType, ParamSchema

DtypeCheck = Callable[[Any], bool]


def _is_text(dtype: Any) -> bool:
    return dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype)


def _exactly(numpy_dtype: np.dtype[Any]) -> DtypeCheck:
    return lambda dtype: dtype == numpy_dtype


# Per signature type, the dtypes MLflow's enforcement returns unchanged (a subset of its
# early returns: the exact numpy dtype, or text as object or pandas strings).
_UNCHANGED: dict[DataType, DtypeCheck] = {
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
        self._checks = checks
        self._params_schema = params_schema
        self._model_id = model_id

    def accepts(self, data: Any) -> bool:
        return (
            isinstance(data, pd.DataFrame)
            and data.columns.tolist() == self._columns
            and all(check(dtype) for check, dtype in zip(self._checks, data.dtypes, strict=True))
        )

    def __call__(self, frame: pd.DataFrame, params: dict[str, Any] | None) -> Any:
        params = _enforce_params_schema(params, self._params_schema)
        with set_prediction_context(Context(model_id=self._model_id)):
            return self._predict_fn(frame, params=params)


def build_direct_predict(model: PyFuncModel) -> DirectPredict | None:
    """A DirectPredict when the model's signature is plain named columns, else None."""
    metadata = model.metadata
    schema = metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    # Signatures from type hints are validated inside predict, and dependency schemas go
    # into the prediction context: both stay with PyFuncModel.predict.
    if metadata._is_signature_from_type_hint() or metadata._is_type_hint_from_example():
        return None
    if "dependencies_schemas" in (metadata.metadata or {}):
        return None
    specs = schema.inputs
    if not all(isinstance(spec, ColSpec) and spec.type in _UNCHANGED for spec in specs):
        return None
    predict_fn = model._predict_fn
    params_arg = inspect.signature(predict_fn).parameters.get("params")
    if params_arg is None or params_arg.kind == inspect.Parameter.VAR_KEYWORD:
        return None  # PyFuncModel.predict calls such functions differently
    return DirectPredict(
        predict_fn,
        columns=[str(spec.name) for spec in specs],
        checks=[_UNCHANGED[spec.type] for spec in specs],
        params_schema=metadata.get_params_schema(),
        model_id=model.model_id,
    )
