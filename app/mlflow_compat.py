"""Every private MLflow and pandas name the server relies on, in one place.

The fast paths (app.protocol.frames, app.runtime.direct_predict) and MLflow's own encoding and
unwrapped LLM requests use names that are not public API. They are pinned with MLflow and pandas in
requirements.txt; `check()` also looks them up at start-up, and where one is missing the
server says so once and takes the public path instead (`pd.DataFrame(...)`,
`DataFrame.to_dict`, `PyFuncModel.predict`), which gives the same answers, only slower.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import ParamSchema

logger = logging.getLogger(__name__)

# (module, attribute) pairs each fast path needs.
_PANDAS_FRAMES = (
    ("pandas", "DataFrame._from_arrays"),
    ("pandas", "DataFrame._iter_column_arrays"),
    ("pandas.core.dtypes.cast", "maybe_box_native"),
    ("pandas.core.internals.blocks", "Block.mgr_locs"),
)
_MLFLOW_DIRECT_PREDICT = (
    ("mlflow.models.utils", "_enforce_params_schema"),
    ("mlflow.pyfunc.context", "set_prediction_context"),
    ("mlflow.pyfunc.context", "Context"),
)
# Needed by every request path: without them the server cannot answer as MLflow does.
_MLFLOW_PROTOCOL = (
    ("mlflow.utils.proto_json_utils", "_get_jsonable_obj"),
    ("mlflow.utils.proto_json_utils", "NumpyEncoder"),
    ("mlflow.pyfunc.scoring_server", "_split_data_and_params_for_llm_input"),
    ("mlflow.pyfunc.utils.serving_data_parser", "is_unified_llm_input"),
    ("mlflow.models.model", "Model._is_signature_from_type_hint"),
    ("mlflow.models.model", "Model._is_type_hint_from_example"),
)


@dataclass(frozen=True)
class Compatibility:
    """Which fast paths the installed MLflow and pandas allow."""

    pandas_frames: bool
    direct_predict: bool


def _resolve(module: str, dotted: str) -> Any:
    value: Any = importlib.import_module(module)
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _missing(names: tuple[tuple[str, str], ...]) -> list[str]:
    missing = []
    for module, dotted in names:
        try:
            _resolve(module, dotted)
        except (ImportError, AttributeError):
            missing.append(f"{module}.{dotted}")
    return missing


def check() -> Compatibility:
    """Look every private name up; raise if the protocol's are missing, else log fallbacks."""
    missing_protocol = _missing(_MLFLOW_PROTOCOL)
    if missing_protocol:
        raise RuntimeError(
            "this MLflow lacks names the server needs: " + ", ".join(missing_protocol)
        )
    compatibility = Compatibility(
        pandas_frames=not _missing(_PANDAS_FRAMES),
        direct_predict=not _missing(_MLFLOW_DIRECT_PREDICT),
    )
    if not compatibility.pandas_frames:
        logger.warning(
            "pandas internals missing (%s); frames take pandas' public constructors",
            ", ".join(_missing(_PANDAS_FRAMES)),
        )
    if not compatibility.direct_predict:
        logger.warning(
            "MLflow internals missing (%s); every predict takes PyFuncModel.predict",
            ", ".join(_missing(_MLFLOW_DIRECT_PREDICT)),
        )
    return compatibility


COMPATIBILITY = check()

# The protocol's names exist (check() raised otherwise): imported once, not per request.
from mlflow.pyfunc.scoring_server import _split_data_and_params_for_llm_input  # noqa: E402
from mlflow.pyfunc.utils.serving_data_parser import (  # noqa: E402
    is_unified_llm_input as _is_llm,
)
from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj  # noqa: E402


# --- pandas ---------------------------------------------------------------------------------
def frame_from_final_arrays(arrays: list[Any], names: pd.Index, rows: int) -> pd.DataFrame:
    """`pd.DataFrame(dict(zip(names, arrays)))` without pandas' per-column sanitising."""
    if not COMPATIBILITY.pandas_frames:
        # Series of the arrays' own dtypes: pandas infers nothing (object stays object).
        index = pd.RangeIndex(rows)
        return pd.DataFrame(
            {
                name: pd.Series(array, index=index, dtype=array.dtype, copy=False)
                for name, array in zip(names, arrays, strict=True)
            },
            index=index,
        )
    frame: pd.DataFrame = pd.DataFrame._from_arrays(  # type: ignore[attr-defined]
        arrays, columns=names, index=pd.RangeIndex(rows), verify_integrity=False
    )
    return frame


def column_arrays(frame: pd.DataFrame) -> list[Any]:
    """Each column's values as pandas holds them (numpy or extension arrays), no Series."""
    if not COMPATIBILITY.pandas_frames:
        return [frame.iloc[:, index].array for index in range(frame.shape[1])]
    return list(frame._iter_column_arrays())  # type: ignore[operator]


def block_dtypes(frame: pd.DataFrame) -> list[tuple[Any, list[int]]]:
    """(dtype, column positions) per block of columns pandas stores together: one entry for
    a frame of one dtype, however wide (`frame.dtypes` builds a Series on every call, and
    one array per column costs a microsecond per column)."""
    if not COMPATIBILITY.pandas_frames:
        return [(dtype, [position]) for position, dtype in enumerate(frame.dtypes)]
    return [(block.dtype, block.mgr_locs.as_array.tolist()) for block in frame._mgr.blocks]


def box_native(value: Any) -> Any:
    """A numpy scalar as the Python scalar pandas' `to_dict` gives; anything else as is."""
    if COMPATIBILITY.pandas_frames:
        from pandas.core.dtypes.cast import maybe_box_native  # type: ignore[attr-defined]

        return maybe_box_native(value)
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


# --- MLflow: prediction ---------------------------------------------------------------------
def predict_function(model: PyFuncModel) -> Callable[..., Any] | None:
    """The loaded flavor's own predict function, behind PyFuncModel's schema pass."""
    if not COMPATIBILITY.direct_predict:
        return None
    predict_fn: Callable[..., Any] | None = getattr(model, "_predict_fn", None)
    if predict_fn is None:
        logger.warning("this MLflow's PyFuncModel has no _predict_fn; using its predict")
    return predict_fn


def enforce_params(params: dict[str, Any] | None, schema: ParamSchema | None) -> Any:
    from mlflow.models.utils import _enforce_params_schema

    return _enforce_params_schema(params, schema)


def call_in_prediction_context(
    model_id: str | None, predict_fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Call as PyFuncModel.predict does: inside MLflow's prediction context of the model."""
    from mlflow.pyfunc.context import Context, set_prediction_context

    with set_prediction_context(Context(model_id=model_id)):
        return predict_fn(*args, **kwargs)


def signature_from_type_hints(model: PyFuncModel) -> bool:
    """True when the signature was inferred from `predict`'s type hints (MLflow 3 style)."""
    return bool(model.metadata._is_signature_from_type_hint())


def type_hint_from_example(model: PyFuncModel) -> bool:
    return bool(model.metadata._is_type_hint_from_example())


# --- MLflow: the scoring protocol -----------------------------------------------------------
def is_unified_llm_input(payload: dict[str, Any]) -> bool:
    """MLflow's unwrapped LLM request (`messages`, `prompt` or `input` at the top level)."""
    return bool(_is_llm(payload))


def split_llm_input(
    payload: dict[str, Any], params_schema: ParamSchema | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Data and params of an unwrapped LLM request, split by the params schema as MLflow does."""
    data, params = _split_data_and_params_for_llm_input(payload, params_schema)
    return data, params


def jsonable(predictions: Any) -> Any:
    """MLflow's first encoding step: DataFrames and Series as records, arrays as lists."""
    return _get_jsonable_obj(predictions, pandas_orient="records")


def json_default() -> Callable[[Any], Any]:
    """MLflow's JSON encoder fallback (numpy, bytes, datetimes, pydantic), for orjson."""
    default: Callable[[Any], Any] = NumpyEncoder().default
    return default
