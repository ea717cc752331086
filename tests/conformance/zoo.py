"""A zoo of small real MLflow models, of the kinds MLflow's own scoring-server tests use.

Each model is saved with MLflow into a directory that both servers load: ours through
the production command, and `mlflow models serve`. The PythonModels below are pickled by
value (cloudpickle), so neither server needs this module on its path.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import cloudpickle  # type: ignore[import-untyped]  # cloudpickle ships no type information
import mlflow
import numpy as np
import pandas as pd
import pydantic
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec
from mlflow.types.schema import Array, Map, Object, Property
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


# --- PythonModels -------------------------------------------------------------------------
class ReturnsFrame(PythonModel):
    """A DataFrame of mixed types, computed row by row."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.DataFrame(
            {
                "total": model_input["a"] + model_input["b"],
                "label": np.where(model_input["a"] > 1, "big", "small"),
                "flag": model_input["a"] > 1,
            }
        )


class ReturnsNamedSeries(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.Series(model_input["a"] * 2.0, name="doubled")


class ReturnsUnnamedSeries(PythonModel):
    """`pd.Series(model.predict(X))`: the most common output of a wrapped model."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.Series((model_input["a"] * 2.0).to_numpy())


class ReturnsArray(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        values = model_input.to_numpy(dtype=np.float64)
        return np.stack([values.sum(axis=1), values.max(axis=1)], axis=1)


class ReturnsListOfStr(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return [f"row-{index}:{value}" for index, value in enumerate(model_input["a"])]


class ReturnsDict(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return {
            "count": len(model_input),
            "sum": np.float32(model_input["a"].sum()),
            "tenth": np.float32(0.1),
            "missing": float("nan"),
            "columns": [str(c) for c in model_input.columns],
        }


class ReturnsScalar(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return 1


class ReturnsDatetimes(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        start = pd.Timestamp("2024-01-01 12:30:00")
        return pd.DataFrame(
            {
                "when": [start + pd.Timedelta(days=int(a)) for a in model_input["a"]],
                "day": [datetime.date(2024, 1, 1 + int(a) % 28) for a in model_input["a"]],
            }
        )


class DescribesInput(PythonModel):
    """Answers the dtype and a rendering of every column it was given: shows parsing."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if not isinstance(model_input, pd.DataFrame):
            return {"type": type(model_input).__name__}
        return [
            [str(name), str(dtype), [None if v is None else str(v) for v in model_input[name]]]
            for name, dtype in model_input.dtypes.items()
        ]


class EchoesParams(PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        shown = {key: str(value) for key, value in sorted((params or {}).items())}
        return [shown for _ in range(len(model_input))]


class EchoesWhatItGets(PythonModel):
    """No signature: answers what it was handed, the input and the params, as it got them."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if isinstance(model_input, pd.DataFrame):
            shown = model_input.to_dict(orient="split")
        else:
            shown = model_input
        return {"type": type(model_input).__name__, "input": shown, "params": repr(params)}


class TensorSum(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if isinstance(model_input, dict):
            return {name: np.asarray(value).sum(axis=-1) for name, value in model_input.items()}
        return np.asarray(model_input).sum(axis=-1)


class CenteredScore(PythonModel):
    """Looks across rows: each answer depends on the other rows of the same call."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        values = model_input["x"].to_numpy(dtype=np.float64)
        return pd.DataFrame(
            {"centered": values - values.mean(), "rank": values.argsort().argsort()}
        )


class ChatEcho(PythonModel):
    """A chat-style model: a column of message lists, answered per row."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if isinstance(model_input, pd.DataFrame):
            rows = model_input.to_dict(orient="records")
        else:
            rows = model_input if isinstance(model_input, list) else [model_input]
        answers = []
        for row in rows:
            messages = row.get("messages") or []
            last = messages[-1]["content"] if messages else ""
            answers.append({"reply": f"echo: {last}", "turns": len(messages)})
        return answers


class HintedStrings(PythonModel):
    """MLflow 3's recommended style: the signature comes from the type hints."""

    def predict(self, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:  # type: ignore[override]  # MLflow 3 type hints: predict without context, as MLflow allows
        return [text.upper() for text in model_input]


class Message(pydantic.BaseModel):
    role: str
    content: str


class HintedPydantic(PythonModel):
    def predict(  # type: ignore[override]  # MLflow 3 type hints: predict without context, as MLflow allows
        self, model_input: list[Message], params: dict[str, Any] | None = None
    ) -> list[str]:
        return [f"{message.role}: {message.content[::-1]}" for message in model_input]


class TextColumn(PythonModel):
    """One text column: clients call it with a plain list of strings."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return [len(text) for text in model_input.iloc[:, 0]]


class Failing(PythonModel):
    """Raises on any input: the model's own fault."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        raise RuntimeError("this model always fails")


# --- the zoo ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZooModel:
    name: str
    build: Callable[[Path], None]
    # case name -> (content type, body: a JSON value, or str or bytes sent as they are)
    cases: dict[str, tuple[str, Any]]
    # False for a model whose warm-up must fail: ours then serves but reports not ready.
    ready: bool = True


JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
AB_FRAME = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
AB_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.double, "b")])
)


# The server's default MAX_REQUEST_ROWS: one past it is refused (a deliberate difference).
ROWS_LIMIT = 10_000
# Naming the requirements skips MLflow's inference of them (a predict in a subprocess).
REQUIREMENTS = [f"mlflow=={mlflow.__version__}"]


def _save(path: Path, model: PythonModel, **kwargs: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(path, python_model=model, pip_requirements=REQUIREMENTS, **kwargs)


def _python_model(model: PythonModel, **kwargs: Any) -> Callable[[Path], None]:
    return lambda path: _save(path, model, **kwargs)


def _iris() -> tuple[np.ndarray, np.ndarray]:
    iris = load_iris()
    return iris.data[:, :2], iris.target


def _sklearn_knn_without_signature(path: Path) -> None:
    features, target = _iris()
    mlflow.sklearn.save_model(
        KNeighborsClassifier().fit(features, target),
        path,
        serialization_format="cloudpickle",
        pip_requirements=REQUIREMENTS,
    )


def _sklearn_logreg_with_signature(path: Path) -> None:
    features, target = _iris()
    frame = pd.DataFrame(features, columns=["sepal_length", "sepal_width"])
    model = LogisticRegression(max_iter=500).fit(frame, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            path,
            signature=infer_signature(frame, model.predict(frame)),
            input_example=frame.head(2),
            serialization_format="cloudpickle",
            pip_requirements=REQUIREMENTS,
        )


def _ab_cases() -> dict[str, tuple[str, Any]]:
    records = AB_FRAME.to_dict(orient="records")
    return {
        "records": (JSON, {"dataframe_records": records}),
        "split": (JSON, {"dataframe_split": AB_FRAME.to_dict(orient="split")}),
        "split_no_index": (JSON, {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 0.5]]}}),
        "instances_records": (JSON, {"instances": records}),
        "inputs_columns": (JSON, {"inputs": AB_FRAME.to_dict(orient="list")}),
        "inputs_records": (JSON, {"inputs": records}),
        "csv": (CSV, AB_FRAME.to_csv(index=False)),
        "csv_charset": (CSV + "; charset=UTF-8", AB_FRAME.to_csv(index=False)),
        "json_charset": (JSON + "; charset=UTF-8", {"dataframe_records": records}),
        "extra_column": (JSON, {"dataframe_records": [{"a": 1, "b": 0.5, "c": "x"}]}),
        "missing_column": (JSON, {"dataframe_records": [{"a": 1}]}),
        "wrong_type": (JSON, {"dataframe_records": [{"a": "one", "b": 0.5}]}),
        "string_number_for_double": (JSON, {"dataframe_records": [{"a": 1, "b": "3.5"}]}),
        "decimal_for_long": (JSON, {"dataframe_records": [{"a": 35.5, "b": 0.5}]}),
        "whole_float_for_long": (JSON, {"dataframe_records": [{"a": 35.0, "b": 0.5}]}),
        "bool_for_double": (JSON, {"dataframe_records": [{"a": 1, "b": True}]}),
        "null_in_required": (JSON, {"dataframe_records": [{"a": None, "b": 0.5}]}),
        "params_ignored": (JSON, {"dataframe_records": records, "params": {"unknown": 1}}),
        "records_in_data_alias": (JSON, {"data": records}),
        "nan_literal_for_double": (JSON, '{"dataframe_records": [{"a": 1, "b": NaN}]}'),
        **_encoding_cases({"dataframe_records": records}),
        **_protocol_error_cases(records),
    }


def _protocol_error_cases(records: list[dict[Hashable, Any]]) -> dict[str, tuple[str, Any]]:
    """MLflow's own malformed-request cases, whatever the model."""
    return {
        "malformed_json": (JSON, "this is,,,, not valid json"),
        "json_number": (JSON, "1"),
        "json_string": (JSON, '"1"'),
        "json_list": (JSON, "[1]"),
        "no_input_field": (JSON, {"not": "a serialized dataframe"}),
        "two_input_fields": (JSON, {"dataframe_records": [], "dataframe_split": {"data": []}}),
        "split_given_records": (JSON, {"dataframe_split": records}),
        "records_given_split": (JSON, {"dataframe_records": {"columns": ["a"], "data": [[1]]}}),
        "split_bad_index": (JSON, {"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}),
        "empty_csv": (CSV, ""),
        "unsupported_content_type": ("not_a_supported_content_type", "{}"),
        "unknown_content_parameter": (JSON + "; something=something", {"dataframe_records": []}),
        "latin1_charset": (JSON + "; charset=latin-1", {"dataframe_records": []}),
        "params_not_object": (JSON, {"dataframe_records": records, "params": [1]}),
        "mlflow1_split_in_data": (
            JSON,
            {"columns": ["a", "b"], "index": [0], "data": [[1, 0.5]]},
        ),
    }


def _encoding_cases(payload: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """JSON in UTF-16 and UTF-32, with and without a byte order mark, and with a UTF-8
    one: MLflow's server reads bytes with json.loads, which detects them; a charset
    parameter other than UTF-8 it refuses."""
    text = json.dumps(payload)
    return {
        "json_utf16": (JSON, text.encode("utf-16")),
        "json_utf16_le_without_bom": (JSON, text.encode("utf-16-le")),
        "json_utf32": (JSON, text.encode("utf-32")),
        "json_utf32_be_without_bom": (JSON, text.encode("utf-32-be")),
        "json_utf8_bom": (JSON, text.encode("utf-8-sig")),
        "json_utf16_cut_mid_character": (JSON, text.encode("utf-16")[:-1]),
        "utf16_charset": (JSON + "; charset=utf-16", text.encode("utf-16")),
    }


def _iris_cases() -> dict[str, tuple[str, Any]]:
    features, _ = _iris()
    frame = pd.DataFrame(features[:5])
    named = pd.DataFrame(features[:5], columns=["sepal_length", "sepal_width"])
    return {
        "records_positional": (JSON, {"dataframe_records": frame.to_dict(orient="records")}),
        "split_positional": (JSON, {"dataframe_split": frame.to_dict(orient="split")}),
        "records_named": (JSON, {"dataframe_records": named.to_dict(orient="records")}),
        "split_named": (JSON, {"dataframe_split": named.to_dict(orient="split")}),
        "instances_rows": (JSON, {"instances": features[:5].tolist()}),
        "inputs_rows": (JSON, {"inputs": features[:5].tolist()}),
        "csv_named": (CSV, named.to_csv(index=False)),
        "incompatible_frame": (
            JSON,
            {"dataframe_split": pd.DataFrame(np.arange(10)).to_dict(orient="split")},
        ),
        "paths_in_values": (
            JSON,
            {
                "dataframe_split": {
                    "columns": ["url", "bad_protocol"],
                    "data": [["http://foo.com", "aaa://bbb"], ["https://bar.com", "address:/p"]],
                }
            },
        ),
        **_protocol_error_cases(named.to_dict(orient="records")),
    }


ALL_TYPES_FRAME = pd.DataFrame(
    {
        "boolean": [True, False, True],
        "integer": np.array([1, 2, 3], np.int32),
        "long": np.array([1, 2, 3], np.int64),
        "float": np.array([math.pi, 2 * math.pi, 3 * math.pi], np.float32),
        "double": [math.pi, 2 * math.pi, 3 * math.pi],
        "string": ["a", "b", "c"],
        "datetime": pd.to_datetime(
            ["2021-01-01", "2021-02-02", "2021-03-03T12:00:00"], format="ISO8601"
        ),
    }
)
ALL_TYPES_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(column, column) for column in ALL_TYPES_FRAME.columns])
)


class _Split(TypedDict):
    """A `dataframe_split` body."""

    columns: list[Hashable]
    data: list[list[Any]]


def _all_types_cases() -> dict[str, tuple[str, Any]]:
    split: _Split = {
        "columns": list(ALL_TYPES_FRAME.columns),
        "data": [
            [True, 1, 1, math.pi, math.pi, "a", "2021-01-01T00:00:00"],
            [False, 2, 2, 2 * math.pi, 2 * math.pi, "b", "2021-02-02T00:00:00"],
        ],
    }
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    shuffled = {"columns": split["columns"][::-1], "data": [row[::-1] for row in split["data"]]}
    return {
        "split": (JSON, {"dataframe_split": split}),
        "split_shuffled": (JSON, {"dataframe_split": shuffled}),
        "records": (JSON, {"dataframe_records": records}),
        "inputs_columns": (
            JSON,
            {
                "inputs": {
                    name: [row[i] for row in split["data"]]
                    for i, name in enumerate(split["columns"])
                }
            },
        ),
        "csv": (CSV, ALL_TYPES_FRAME.drop(columns=["datetime"]).to_csv(index=False)),
        "int_overflow_for_integer": (
            JSON,
            {"dataframe_split": {**split, "data": [[True, 2**40, 1, 1.0, 1.0, "a", "2021-01-01"]]}},
        ),
    }


OPTIONAL_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(DataType.double, "x"),
            ColSpec(DataType.long, "count", required=False),
            ColSpec(DataType.string, "tag", required=False),
        ]
    )
)


def _optional_cases() -> dict[str, tuple[str, Any]]:
    return {
        "all_present": (JSON, {"dataframe_records": [{"x": 1.0, "count": 2, "tag": "t"}]}),
        "optional_absent": (JSON, {"dataframe_records": [{"x": 1.0}, {"x": 2.0}]}),
        "optional_long_with_nulls": (
            JSON,
            {"dataframe_records": [{"x": 1.0, "count": 2}, {"x": 2.0, "count": None}]},
        ),
        "optional_long_missing_in_one_row": (
            JSON,
            {"dataframe_records": [{"x": 1.0, "count": 2}, {"x": 2.0}]},
        ),
        "csv_optional_empty": (CSV, "x,count,tag\n1.0,,\n2.0,3,b\n"),
        "required_missing": (JSON, {"dataframe_records": [{"count": 2}]}),
    }


PARAMS_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(DataType.long, "a")]),
    params=ParamSchema(
        [
            ParamSpec("text", DataType.string, "hello"),
            ParamSpec("whole", DataType.long, 7),
            ParamSpec("small", DataType.integer, np.int32(3)),
            ParamSpec("ratio", DataType.double, 0.5),
            ParamSpec("half", DataType.float, np.float32(0.25)),
            ParamSpec("enabled", DataType.boolean, True),
            ParamSpec("when", DataType.datetime, np.datetime64("2023-07-01")),
            ParamSpec("weights", DataType.double, [1.0, 2.0], shape=(-1,)),
        ]
    ),
)


def _params_cases() -> dict[str, tuple[str, Any]]:
    rows = [{"a": 1}, {"a": 2}]
    return {
        "defaults": (JSON, {"dataframe_records": rows}),
        "every_type": (
            JSON,
            {
                "dataframe_records": rows,
                "params": {
                    "text": "hi",
                    "whole": 9,
                    "small": 4,
                    "ratio": 0.75,
                    "half": 0.5,
                    "enabled": False,
                    "when": "2024-02-03",
                    "weights": [3.0, 4.5],
                },
            },
        ),
        "int_for_double": (JSON, {"dataframe_records": rows, "params": {"ratio": 2}}),
        "bad_datetime": (JSON, {"dataframe_records": rows, "params": {"when": "invalid_value1"}}),
        "bad_long": (JSON, {"dataframe_records": rows, "params": {"whole": "nine"}}),
        "null_param": (JSON, {"dataframe_records": rows, "params": {"ratio": None}}),
        "scalar_for_list": (JSON, {"dataframe_records": rows, "params": {"weights": 1.0}}),
        "undeclared_param": (JSON, {"dataframe_records": rows, "params": {"invalid_param": "v"}}),
        "csv_without_params": (CSV, "a\n1\n2\n"),
    }


TENSOR_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            TensorSpec(np.dtype(np.float64), (-1, 2), "left"),
            TensorSpec(np.dtype(np.float64), (-1, 2), "right"),
        ]
    )
)


def _tensor_cases() -> dict[str, tuple[str, Any]]:
    left = [[1.0, 2.0], [3.0, 4.0]]
    right = [[0.5, 0.5], [1.5, 2.5]]
    return {
        "inputs_named": (JSON, {"inputs": {"left": left, "right": right}}),
        "instances_named": (
            JSON,
            {
                "instances": [
                    {"left": l_row, "right": r_row}
                    for l_row, r_row in zip(left, right, strict=True)
                ]
            },
        ),
        "inputs_missing_tensor": (JSON, {"inputs": {"left": left}}),
        "inputs_wrong_shape": (JSON, {"inputs": {"left": [1.0, 2.0, 3.0], "right": right}}),
        "inputs_text": (JSON, {"inputs": {"left": [["a", "b"]], "right": [["c", "d"]]}}),
        "csv_to_tensor_model": (CSV, "left,right\n1.0,2.0\n"),
    }


CHAT_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(
                Array(
                    Object(
                        [Property("role", DataType.string), Property("content", DataType.string)]
                    )
                ),
                "messages",
            ),
            ColSpec(Map(DataType.string), "metadata", required=False),
        ]
    ),
    outputs=Schema([ColSpec(DataType.string, "reply"), ColSpec(DataType.long, "turns")]),
)


def _chat_cases() -> dict[str, tuple[str, Any]]:
    conversation = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    return {
        "records": (JSON, {"dataframe_records": [{"messages": conversation}]}),
        "records_with_map": (
            JSON,
            {"dataframe_records": [{"messages": conversation, "metadata": {"k": "v"}}]},
        ),
        "inputs_records": (JSON, {"inputs": [{"messages": conversation}]}),
        "inputs_columns": (JSON, {"inputs": {"messages": [conversation]}}),
        "unwrapped_messages": (JSON, {"messages": conversation}),
        "bad_message_shape": (JSON, {"dataframe_records": [{"messages": [{"role": 1}]}]}),
        "messages_not_list": (JSON, {"dataframe_records": [{"messages": "hello"}]}),
    }


def _hinted_cases() -> dict[str, tuple[str, Any]]:
    """A table (CSV, Parquet) reaches such a model as read; its predict converts it."""
    return {
        "inputs": (JSON, {"inputs": ["a", "bc"]}),
        "inputs_wrong_type": (JSON, {"inputs": [1, 2]}),
        "records": (JSON, {"dataframe_records": [{"text": "a"}]}),
        "instances": (JSON, {"instances": ["a", "bc"]}),
        "unwrapped_prompt": (JSON, {"prompt": "hello"}),
        "csv": (CSV, "text\na\nbc\n"),
        "csv_two_columns": (CSV, "a,b\nx,y\n"),
        "csv_numbers": (CSV, "n\n1\n2\n"),
        "csv_header_only": (CSV, "text\n"),
        "parquet": (PARQUET, pd.DataFrame({"text": ["a", "bc"]}).to_parquet(index=False)),
        **_encoding_cases({"inputs": ["a", "bc"]}),
    }


def _pydantic_cases() -> dict[str, tuple[str, Any]]:
    return {
        "inputs": (JSON, {"inputs": [{"role": "user", "content": "hello"}]}),
        "inputs_missing_field": (JSON, {"inputs": [{"role": "user"}]}),
        "inputs_not_list": (JSON, {"inputs": {"role": "user", "content": "x"}}),
        "csv": (CSV, "role,content\nuser,hello\nassistant,hi\n"),
    }


def _echo_cases() -> dict[str, tuple[str, Any]]:
    """MLflow hands a model without signature params=None for a JSON body without
    `params` (or with null) and for CSV, the object for one with it ({} once MLflow has
    dropped undeclared names), and {} for an unwrapped LLM body."""
    records = [{"x": 1.5, "y": "a"}]
    one_cell_rows = {"instances": [[0]] * (ROWS_LIMIT + 1)}
    return {
        "unwrapped_messages": (JSON, {"messages": [{"role": "user", "content": "hi"}]}),
        "unwrapped_prompt": (JSON, {"prompt": "hello"}),
        "unwrapped_input": (JSON, {"input": ["a", "bc"]}),
        "unwrapped_with_other_keys": (JSON, {"prompt": "hello", "temperature": 0.5}),
        "records": (JSON, {"dataframe_records": records}),
        "records_params_null": (JSON, {"dataframe_records": records, "params": None}),
        "records_params_empty": (JSON, {"dataframe_records": records, "params": {}}),
        "records_params_undeclared": (JSON, {"dataframe_records": records, "params": {"k": 1}}),
        "params_not_object": (JSON, {"dataframe_records": records, "params": [1]}),
        "instances_list": (JSON, {"instances": [1, 2, 3]}),
        "csv": (CSV, "x,y\n1.5,a\n"),
        "rows_past_the_limit": (JSON, one_cell_rows),
        "rows_past_the_limit_utf16": (JSON, json.dumps(one_cell_rows).encode("utf-16")),
        **_encoding_cases({"dataframe_records": records}),
        "unwrapped_utf16": (JSON, json.dumps({"prompt": "h\u00e9llo"}).encode("utf-16")),
    }


def _text_cases() -> dict[str, tuple[str, Any]]:
    return {
        "inputs_list": (JSON, {"inputs": ["a", "bcd"]}),
        "instances_list": (JSON, {"instances": ["a", "bcd"]}),
        "records": (JSON, {"dataframe_records": [{"text": "a"}, {"text": "bcd"}]}),
        "inputs_numbers": (JSON, {"inputs": [1, 2]}),
        "unwrapped_input": (JSON, {"input": ["a", "bcd"]}),
        "csv": (CSV, "text\na\nbcd\n"),
    }


def _no_signature_cases() -> dict[str, tuple[str, Any]]:
    return {
        "records": (JSON, {"dataframe_records": [{"x": 1, "y": "a"}, {"x": 2.5, "y": None}]}),
        "split_mixed": (
            JSON,
            {
                "dataframe_split": {
                    "columns": ["zip", "cost", "count"],
                    "data": [["95120", 10.45, -8], ["95128", 23.0, -1]],
                }
            },
        ),
        "records_zip_codes": (
            JSON,
            {
                "dataframe_records": [
                    {"zip": "95120", "cost": 10.45, "score": 8},
                    {"zip": "95128", "cost": 23.0, "score": 0},
                ]
            },
        ),
        "instances_list": (JSON, {"instances": [1, 2, 3]}),
        "inputs_matrix": (JSON, {"inputs": [[1, 2], [3, 4]]}),
        "inputs_columns": (JSON, {"inputs": {"a": [1, 2], "b": ["x", "y"]}}),
        "csv": (CSV, "x,y\n1,a\n2,b\n"),
        "unwrapped_messages": (JSON, {"messages": [{"role": "user", "content": "hi"}]}),
    }


def _cross_row_cases() -> dict[str, tuple[str, Any]]:
    return {
        "three_rows": (JSON, {"dataframe_records": [{"x": 1.0}, {"x": 5.0}, {"x": 3.0}]}),
        "one_row": (JSON, {"dataframe_records": [{"x": 4.0}]}),
    }


def _out_cases() -> dict[str, tuple[str, Any]]:
    rows = AB_FRAME.to_dict(orient="records")
    return {
        "records": (JSON, {"dataframe_records": rows}),
        "split": (JSON, {"dataframe_split": AB_FRAME.to_dict(orient="split")}),
        "csv": (CSV, AB_FRAME.to_csv(index=False)),
        "one_row": (JSON, {"dataframe_records": rows[:1]}),
    }


AB_EXAMPLE = AB_FRAME.head(2)


def _typed(model: PythonModel) -> Callable[[Path], None]:
    return _python_model(model, signature=AB_SIGNATURE, input_example=AB_EXAMPLE)


def save(model: ZooModel, path: Path) -> None:
    """Save `model` with MLflow into `path`, its classes pickled by value."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    model.build(path)


def build_zoo() -> list[ZooModel]:
    """Every model of the zoo, with the requests sent to it."""
    return [
        ZooModel("sklearn_knn_no_signature", _sklearn_knn_without_signature, _iris_cases()),
        ZooModel("sklearn_logreg_signature", _sklearn_logreg_with_signature, _iris_cases()),
        ZooModel("frame_output", _typed(ReturnsFrame()), _ab_cases()),
        ZooModel("named_series_output", _typed(ReturnsNamedSeries()), _out_cases()),
        ZooModel("unnamed_series_output", _typed(ReturnsUnnamedSeries()), _out_cases()),
        ZooModel("ndarray_output", _typed(ReturnsArray()), _out_cases()),
        ZooModel("list_of_str_output", _typed(ReturnsListOfStr()), _out_cases()),
        ZooModel("dict_output", _typed(ReturnsDict()), _out_cases()),
        ZooModel("scalar_output_no_signature", _python_model(ReturnsScalar()), _iris_cases()),
        ZooModel("datetime_output", _typed(ReturnsDatetimes()), _out_cases()),
        ZooModel(
            "all_types_signature",
            _python_model(DescribesInput(), signature=ALL_TYPES_SIGNATURE),
            _all_types_cases(),
        ),
        ZooModel(
            "optional_columns",
            _python_model(DescribesInput(), signature=OPTIONAL_SIGNATURE),
            _optional_cases(),
        ),
        ZooModel(
            "params_every_type",
            _python_model(EchoesParams(), signature=PARAMS_SIGNATURE),
            _params_cases(),
        ),
        ZooModel(
            "tensor_signature",
            _python_model(TensorSum(), signature=TENSOR_SIGNATURE),
            _tensor_cases(),
        ),
        ZooModel("type_hints_list_str", _python_model(HintedStrings()), _hinted_cases()),
        ZooModel("type_hints_pydantic", _python_model(HintedPydantic()), _pydantic_cases()),
        ZooModel(
            "chat_array_object_map",
            _python_model(ChatEcho(), signature=CHAT_SIGNATURE),
            _chat_cases(),
        ),
        ZooModel(
            "single_text_column",
            _python_model(
                TextColumn(),
                signature=ModelSignature(inputs=Schema([ColSpec(DataType.string, "text")])),
            ),
            _text_cases(),
        ),
        ZooModel("no_signature", _python_model(DescribesInput()), _no_signature_cases()),
        ZooModel("echo_no_signature", _python_model(EchoesWhatItGets()), _echo_cases()),
        ZooModel(
            "cross_row",
            _python_model(
                CenteredScore(),
                signature=ModelSignature(inputs=Schema([ColSpec(DataType.double, "x")])),
            ),
            _cross_row_cases(),
        ),
        ZooModel("failing_model", _typed(Failing()), _out_cases(), ready=False),
    ]
