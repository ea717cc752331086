"""The hot path's frame construction and record export equal pandas' and MLflow's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import infer_and_parse_data
from mlflow.types import ColSpec, Schema

from app.protocol.frames import FrameBuilder, frame_from_arrays, frame_records
from app.protocol.parsing import InputContract, parse_request
from app.runtime.model import ServedModel
from registry_scripts.demo_data import LABEL, make_credit_dataset


def _arrays(rows: int) -> dict[str, Any]:
    """One column of each kind a model input or output holds."""
    numbers = np.arange(rows)
    return {
        "long": numbers.astype(np.int64),
        "integer": numbers.astype(np.int32),
        "double": numbers / 3,
        "float": (numbers / 3).astype(np.float32),
        "boolean": numbers % 2 == 0,
        "text": pd.array([f"t{n}" if n % 3 else None for n in numbers], dtype="str"),
        "objects": np.array([{"n": int(n)} if n % 2 else None for n in numbers], dtype=object),
        "nullable": pd.array([int(n) if n % 2 else None for n in numbers], dtype="Int64"),
        "when": pd.array(pd.date_range("2026-01-01", periods=rows, freq="h")),
        "category": pd.Categorical([["low", "high"][n % 2] for n in numbers]),
    }


def _typed(records: Sequence[Mapping[Any, Any]]) -> list[list[tuple[str, str, str]]]:
    """Records compared by key, value type and repr: NaN and NA compare equal to themselves."""
    return [
        [(key, type(value).__name__, repr(value)) for key, value in row.items()] for row in records
    ]


@pytest.mark.parametrize("rows", [0, 1, 7])
def test_frame_from_arrays_equals_the_public_constructor(rows: int) -> None:
    arrays = _arrays(rows)
    built = frame_from_arrays(arrays)
    pd.testing.assert_frame_equal(built, pd.DataFrame(arrays), check_exact=True)
    assert built.dtypes.to_dict() == pd.DataFrame(arrays).dtypes.to_dict()


def test_frames_of_the_same_columns_share_one_label_index_until_a_model_renames_it() -> None:
    first = frame_from_arrays({"a": np.zeros(2), "b": np.ones(2)})
    second = frame_from_arrays({"a": np.ones(1), "b": np.zeros(1)})
    assert second.columns is first.columns
    assert frame_from_arrays({"b": np.ones(1), "a": np.ones(1)}).columns.tolist() == ["b", "a"]
    first.columns.name = "renamed by a model"  # the one mutable part of an Index
    third = frame_from_arrays({"a": np.ones(1), "b": np.zeros(1)})
    assert third.columns is not first.columns
    assert third.columns.name is None
    pd.testing.assert_frame_equal(third, pd.DataFrame({"a": [1.0], "b": [0.0]}))


def test_frame_from_arrays_refuses_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"columns of different lengths: \[2, 3\]"):
        frame_from_arrays({"a": np.zeros(2), "b": np.zeros(3)})


@pytest.mark.parametrize("rows", [0, 1, 7])
def test_frame_records_equal_pandas_records_value_for_value(rows: int) -> None:
    frame = pd.DataFrame(_arrays(rows))
    records = frame_records(frame)
    assert _typed(records) == _typed(frame.to_dict(orient="records"))
    assert len(records) == rows


def test_a_frame_without_columns_gives_an_empty_record_per_row_as_pandas_does() -> None:
    frame = pd.DataFrame(index=range(3))
    assert frame_records(frame) == frame.to_dict(orient="records") == [{}, {}, {}]


def test_frame_records_give_none_for_missing_values_as_mlflow_encodes_them() -> None:
    frame = pd.DataFrame(
        {
            "nullable": pd.array([None, 1], dtype="Int64"),
            "text": pd.array([None, "x"], dtype="string"),
            "numpy_in_objects": np.array([np.float32(0.5), np.int64(2)], dtype=object),
        }
    )
    assert _typed(frame_records(frame)) == _typed(
        [
            {"nullable": None, "text": None, "numpy_in_objects": 0.5},
            {"nullable": 1, "text": "x", "numpy_in_objects": 2},
        ]
    )


def test_frame_records_name_columns_as_text() -> None:
    assert frame_records(pd.DataFrame({0: [1.5], "b": ["x"]})) == [{"0": 1.5, "b": "x"}]


@pytest.mark.parametrize("rows", [1, 50])
def test_built_frame_is_what_mlflows_parser_gives_the_model(
    served_model: ServedModel, rows: int
) -> None:
    frame = make_credit_dataset(n_rows=rows, seed=5).drop(columns=[LABEL])
    records = frame.to_dict(orient="records")
    body = pd.io.json.ujson_dumps({"dataframe_records": records}).encode()  # type: ignore[attr-defined]  # pandas' JSON writer; pandas-stubs leaves it out
    schema = served_model.input_schema
    assert schema is not None
    request = parse_request(body, "application/json", served_model.contract)
    built = FrameBuilder(schema)(request.data)

    theirs = infer_and_parse_data({"dataframe_records": records}, schema)
    pd.testing.assert_frame_equal(built, theirs, check_exact=True)
    assert built.dtypes.to_dict() == theirs.dtypes.to_dict()


@pytest.mark.parametrize("dtype", ["double", "float", "long", "integer", "boolean"])
@pytest.mark.parametrize("rows", [1, 3])
def test_a_frame_of_one_type_built_as_one_array_is_what_mlflows_parser_gives(
    dtype: str, rows: int
) -> None:
    """Every column of one numeric type takes the one-array path (wide models)."""
    names = [f"c{index}" for index in range(40)]
    schema = Schema([ColSpec(dtype, name) for name in names])
    cells: dict[str, list[object]] = {
        "double": [2.5, 1, "3.5"],
        "float": [0.1, 3],
        "long": [2**40, 0, -5],
    }
    cells |= {"integer": [7, -1], "boolean": [True, False]}
    values = cells[dtype]
    table = [[values[(row + col) % len(values)] for col in range(40)] for row in range(rows)]
    payload = {"dataframe_split": {"columns": names, "data": table}}
    contract = InputContract(schema, None)
    request = parse_request(orjson.dumps(payload), "application/json", contract)
    builder = FrameBuilder(schema)
    assert builder.uniform_dtype is not None  # the one-array path
    built = builder(request.data)

    theirs = infer_and_parse_data(payload, schema)
    pd.testing.assert_frame_equal(built, theirs, check_exact=True)
    assert built.dtypes.to_dict() == theirs.dtypes.to_dict()
    assert _typed(frame_records(built)) == _typed(theirs.to_dict(orient="records"))


@pytest.mark.parametrize("dtype", ["double", "float"])
def test_a_split_table_of_plain_numbers_is_read_as_one_array_as_mlflow_reads_it(
    dtype: str,
) -> None:
    names = [f"c{index}" for index in range(300)]
    schema = Schema([ColSpec(dtype, name) for name in names])
    table = [
        [(row * 7 + col) / 3 if col % 2 else row - col for col in range(300)] for row in range(4)
    ]
    payload = {"dataframe_split": {"columns": names, "data": table}}
    request = parse_request(orjson.dumps(payload), "application/json", InputContract(schema))
    assert isinstance(request.data, pd.DataFrame)  # the one-array path
    assert request.rows == 4

    theirs = infer_and_parse_data(payload, schema)
    pd.testing.assert_frame_equal(request.data, theirs, check_exact=True)
    assert _typed(frame_records(request.data)) == _typed(theirs.to_dict(orient="records"))
