"""Skipping MLflow's second schema pass changes nothing the model sees or returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.utils import _enforce_schema
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from app.protocol.frames import FrameBuilder
from app.protocol.parsing import parse_request
from app.runtime.direct_predict import build_direct_predict
from app.runtime.model import ServedModel, load_served_model
from registry_scripts.demo_data import LABEL, make_credit_dataset

Variant = Callable[[pd.DataFrame], pd.DataFrame]


def _demo_frame(rows: int) -> pd.DataFrame:
    return make_credit_dataset(n_rows=rows, seed=11).drop(columns=[LABEL]).reset_index(drop=True)


def _as_served(frame: pd.DataFrame, served_model: ServedModel) -> pd.DataFrame:
    """The frame the server builds for these rows: parsed from JSON, built once."""
    records = frame.to_dict(orient="records")
    body = pd.io.json.ujson_dumps({"dataframe_records": records})  # type: ignore[attr-defined]  # pandas' JSON writer; pandas-stubs leaves it out
    request = parse_request(body.encode(), "application/json", served_model.contract)
    built: pd.DataFrame = FrameBuilder(served_model.input_schema)(request.data)
    return built


# Frames the fast path takes, and frames it must leave to PyFuncModel.predict.
ACCEPTED: dict[str, Variant] = {
    "as_built": lambda frame: frame,
    "text_as_objects": lambda frame: frame.astype(
        {"employment_status": object, "home_ownership": object}
    ),
}
REFUSED: dict[str, Variant] = {
    "columns_reordered": lambda frame: frame[list(reversed(frame.columns))],
    "extra_column": lambda frame: frame.assign(note="x"),
    "int32_for_long": lambda frame: frame.astype({"age": np.int32}),
    "float32_for_double": lambda frame: frame.astype({"debt_to_income": np.float32}),
    "int32_for_double": lambda frame: frame.assign(income=frame["income"].round().astype(np.int32)),
}


@pytest.mark.parametrize("rows", [1, 100])
@pytest.mark.parametrize("variant", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_frames_are_ones_mlflows_enforcement_returns_unchanged(
    served_model: ServedModel, rows: int, variant: Variant
) -> None:
    frame = variant(_as_served(_demo_frame(rows), served_model))
    direct = build_direct_predict(served_model.pyfunc_model)
    assert direct is not None
    assert direct.accepts(frame)
    assert served_model.input_schema is not None
    enforced = _enforce_schema(frame, served_model.input_schema)
    pd.testing.assert_frame_equal(enforced, frame, check_exact=True)


@pytest.mark.parametrize("rows", [1, 100])
@pytest.mark.parametrize(
    "variant", [*ACCEPTED.values(), *REFUSED.values()], ids=[*ACCEPTED, *REFUSED]
)
def test_predictions_equal_pyfunc_predict_on_either_path(
    served_model: ServedModel, rows: int, variant: Variant
) -> None:
    frame = variant(_as_served(_demo_frame(rows), served_model))
    expected = served_model.pyfunc_model.predict(frame)
    assert isinstance(expected, pd.DataFrame)
    pd.testing.assert_frame_equal(served_model.predict(frame), expected, check_exact=True)


@pytest.mark.parametrize("variant", REFUSED.values(), ids=REFUSED.keys())
def test_frames_mlflow_would_change_are_refused(
    served_model: ServedModel, variant: Variant
) -> None:
    direct = build_direct_predict(served_model.pyfunc_model)
    assert direct is not None
    assert not direct.accepts(variant(_as_served(_demo_frame(3), served_model)))


def test_a_frame_mlflow_rejects_is_still_rejected_by_mlflow(served_model: ServedModel) -> None:
    frame = _as_served(_demo_frame(3), served_model).drop(columns=["age"])
    with pytest.raises(MlflowException, match="missing inputs \\['age'\\]"):
        served_model.predict(frame)


def test_params_still_pass_mlflows_params_enforcement(served_model: ServedModel) -> None:
    frame = _as_served(_demo_frame(50), served_model)
    strict = {"low_threshold": 0.05, "high_threshold": 0.1}
    expected = served_model.pyfunc_model.predict(frame, params=strict)
    assert isinstance(expected, pd.DataFrame)
    pd.testing.assert_frame_equal(served_model.predict(frame, strict), expected, check_exact=True)
    # Only one declared param given: MLflow fills the other with its default.
    partial = {"low_threshold": 0.05}
    expected = served_model.pyfunc_model.predict(frame, params=partial)
    assert isinstance(expected, pd.DataFrame)
    pd.testing.assert_frame_equal(served_model.predict(frame, partial), expected, check_exact=True)


class _EchoModel(PythonModel):
    def predict(self, context: object, model_input: object, params: object = None) -> object:
        return model_input


@pytest.mark.parametrize(
    "signature",
    [
        None,
        ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float64), (-1, 3))])),
        ModelSignature(inputs=Schema([ColSpec("double")])),  # columns without names
        ModelSignature(inputs=Schema([ColSpec("datetime", "when")])),
    ],
    ids=["no_signature", "tensor", "unnamed_columns", "datetime_column"],
)
def test_models_it_cannot_vouch_for_keep_pyfunc_predict(
    tmp_path: Path, signature: ModelSignature | None
) -> None:
    path = tmp_path / "echo"
    # Requirements named, so MLflow does not start a process to infer them.
    mlflow.pyfunc.save_model(
        path, python_model=_EchoModel(), signature=signature, pip_requirements=["mlflow"]
    )
    model = load_served_model(str(path))
    assert build_direct_predict(model.pyfunc_model) is None
