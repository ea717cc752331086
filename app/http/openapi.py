"""OpenAPI for /invocations (and the V2 inference paths) built from the model's signature.

The route reads the raw body (MLflow's protocol has four shapes plus CSV), so FastAPI cannot
infer a schema; this module writes it, so /docs shows the real columns and types. Its
example is made up from the signature, never the input example logged with the model:
that one is usually the first rows of the training data, and /docs may be public.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi import FastAPI
from mlflow.types import ColSpec, DataType, Schema

from app.errors import (
    ERROR_BODY_SCHEMA,
    V2_ERROR_BODY_SCHEMA,
    ModelNotFoundError,
    ServingError,
    error_classes,
)
from app.guardrails.rules import Guardrails
from app.paths import SCORING_PATH, V2_INFER_TEMPLATES
from app.protocol.parsing import CSV, INPUT_FIELDS, JSON, RECORDS_ALIAS, SUPPORTED_CONTENT_TYPES
from app.protocol.v2 import DATATYPES, model_metadata
from app.protocol.validation import plain_type
from app.runtime.model import ServedModel

_JSON_TYPES: dict[object, dict[str, str]] = {
    DataType.long: {"type": "integer", "format": "int64"},
    DataType.integer: {"type": "integer", "format": "int32"},
    DataType.double: {"type": "number", "format": "double"},
    DataType.float: {"type": "number", "format": "float"},
    DataType.boolean: {"type": "boolean"},
    DataType.string: {"type": "string"},
    DataType.datetime: {"type": "string", "format": "date-time"},
}

# Values of the right type that say plainly they are examples.
_PLACEHOLDERS: dict[object, Any] = {
    DataType.long: 1,
    DataType.integer: 1,
    DataType.double: 1.5,
    DataType.float: 1.5,
    DataType.boolean: True,
    DataType.string: "string",
    DataType.datetime: "2024-01-01T00:00:00",
}


def document_invocations(
    app: FastAPI, model: ServedModel, guardrails: Guardrails | None = None
) -> None:
    """Add POST /invocations to the app's OpenAPI document: FastAPI documents the routes it
    handles, and this one is plain ASGI (app.http.routes.InvocationsEndpoint)."""

    def paths() -> dict[str, Any]:
        return {
            SCORING_PATH: {
                "post": {
                    "tags": ["scoring"],
                    "summary": "Score rows with MLflow's scoring protocol",
                    "operationId": "invocations_invocations_post",
                    **invocations_openapi(model, guardrails),
                }
            }
        }

    _add_paths(app, paths)


def document_v2_inference(app: FastAPI, model: ServedModel) -> None:
    """Add POST /v2/models/{model_name}[/versions/{model_version}]/infer to the document:
    plain ASGI too (app.http.v2_routes.V2InferEndpoint)."""

    def paths() -> dict[str, Any]:
        operation = v2_inference_openapi(model)
        documented = {}
        for template in V2_INFER_TEMPLATES:
            names = ["model_name"] + (["model_version"] if "{model_version}" in template else [])
            documented[template] = {
                "post": {
                    "tags": ["open inference protocol (V2)"],
                    "summary": "Infer with the Open Inference Protocol (V2)",
                    "operationId": "v2_infer" + ("_version" if len(names) == 2 else ""),
                    "parameters": [
                        {
                            "name": name,
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                        for name in names
                    ],
                    **operation,
                }
            }
        return documented

    _add_paths(app, paths)


def _add_paths(app: FastAPI, paths: Callable[[], dict[str, Any]]) -> None:
    """Wrap the app's OpenAPI builder so the document, built once at its first request,
    also holds `paths()`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document["paths"].update(paths())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def v2_inference_openapi(model: ServedModel) -> dict[str, Any]:
    """The V2 inference operation: tensors in and out (docs/v2-protocol.md), with an example
    of one made-up row as one tensor per column, and V2's error body."""
    tensor = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": sorted(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array", "items": {}},
            "parameters": {"type": "object"},
        },
    }
    request: dict[str, Any] = {
        "schema": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "inputs": {"type": "array", "items": tensor},
                "outputs": {"type": "array", "items": {"type": "object"}},
                "parameters": {"type": "object"},
            },
        }
    }
    records = synthetic_records(model.input_schema)
    if records:
        datatypes = {
            described["name"]: described["datatype"]
            for described in model_metadata("", None, model.input_schema, None)["inputs"]
        }
        request["example"] = {
            "inputs": [
                {"name": name, "datatype": datatypes[name], "shape": [1, 1], "data": [value]}
                for name, value in records[0].items()
            ]
        }
    errors = scoring_error_responses()
    errors[str(ModelNotFoundError.status_code)] = {
        "description": f"{_first_line(ModelNotFoundError)} ({ModelNotFoundError.error_code})"
    }
    for response in errors.values():
        response["content"] = {"application/json": {"schema": V2_ERROR_BODY_SCHEMA}}
    return {
        "requestBody": {"required": True, "content": {JSON: request}},
        "responses": {
            "200": {
                "description": "The outputs as tensors: one per column of a DataFrame.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **dict(sorted(errors.items())),
        },
    }


def invocations_openapi(model: ServedModel, guardrails: Guardrails | None = None) -> dict[str, Any]:
    """The operation of POST /invocations: request bodies and answers."""
    record = _record_schema(model.input_schema)
    if guardrails is not None:
        _add_input_rules(record, guardrails)
    records = synthetic_records(model.input_schema)
    json_body: dict[str, Any] = {
        "schema": {
            "type": "object",
            "description": "Exactly one of dataframe_records, dataframe_split, instances, "
            "inputs or data, plus optional params.",
            "oneOf": [{"required": [field]} for field in (*INPUT_FIELDS, RECORDS_ALIAS)],
            "properties": {
                "dataframe_records": {"type": "array", "items": record},
                "dataframe_split": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                        "index": {"type": "array", "items": {}},
                    },
                },
                "instances": {"type": "array", "items": record},
                "inputs": {"description": "Records, columns or tensors, as MLflow accepts."},
                "data": {"type": "array", "items": record, "description": "Same as records."},
                "params": _params_schema(model),
            },
        }
    }
    if records:
        json_body["examples"] = {
            "dataframe_records": {"value": {"dataframe_records": records}},
            "dataframe_split": {
                "value": {
                    "dataframe_split": {
                        "columns": list(records[0]),
                        "data": [list(row.values()) for row in records],
                    }
                }
            },
        }
    csv_body: dict[str, Any] = {"schema": {"type": "string"}}
    if records:
        csv_body["example"] = pd.DataFrame(records).to_csv(index=False)
    bodies = {JSON: json_body, CSV: csv_body}
    as_bytes = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            # Every format the protocol reads, in its order; one described nowhere here
            # (Parquet) is documented as bytes.
            "content": {
                media_type: bodies.get(media_type, as_bytes)
                for media_type in SUPPORTED_CONTENT_TYPES
            },
        },
        "responses": {
            "200": {
                "description": "One prediction per input row.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "predictions": {
                                    "type": "array",
                                    "items": _record_schema(
                                        model.pyfunc_model.metadata.get_output_schema()
                                    ),
                                }
                            },
                        }
                    }
                },
            },
            **scoring_error_responses(),
        },
    }


def scoring_error_responses() -> dict[str, Any]:
    """Every error status the scoring route can answer, described by its error classes."""
    by_status: dict[int, list[type[ServingError]]] = {}
    for error_class in error_classes():
        if error_class.answers_scoring:
            by_status.setdefault(error_class.status_code, []).append(error_class)
    return {
        str(status): {
            "description": " ".join(
                f"{_first_line(error_class)} ({error_class.error_code})" for error_class in classes
            ),
            "content": {"application/json": {"schema": ERROR_BODY_SCHEMA}},
        }
        for status, classes in sorted(by_status.items())
    }


def _first_line(error_class: type[ServingError]) -> str:
    return (error_class.__doc__ or error_class.__name__).strip().splitlines()[0]


def _record_schema(schema: Schema | None) -> dict[str, Any]:
    if schema is None or schema.is_tensor_spec():
        return {"type": "object"}
    columns = [spec for spec in schema.inputs if isinstance(spec, ColSpec) and spec.name]
    return {
        "type": "object",
        "required": [spec.name for spec in columns if spec.required],
        "properties": {spec.name: _JSON_TYPES.get(plain_type(spec), {}) for spec in columns},
    }


def _add_input_rules(record: dict[str, Any], guardrails: Guardrails) -> None:
    """Each input column's business rules in its schema: an enforced rule's bounds and
    allowed values as JSON Schema keywords, every rule named in the description."""
    properties = record.get("properties", {})
    for rule in guardrails.rules:
        check = rule.check
        if check is None or check.column not in properties:
            continue
        column = properties[check.column] = dict(properties[check.column])
        named = f"rule '{rule.id}' ({rule.severity}, {rule.mode})"
        column["description"] = (
            f"{column['description']}; {named}" if "description" in column else named
        )
        if rule.mode != "enforce":
            continue
        keywords = {
            "minimum": check.min,
            "maximum": check.max,
            "exclusiveMinimum": check.gt,
            "exclusiveMaximum": check.lt,
            "enum": check.allowed,
        }
        column.update({key: value for key, value in keywords.items() if value is not None})


def _params_schema(model: ServedModel) -> dict[str, Any]:
    if model.params_schema is None:
        return {"type": "object"}
    return {
        "type": "object",
        "properties": {
            spec.name: {**_JSON_TYPES.get(spec.dtype, {}), "default": _plain(spec.default)}
            for spec in model.params_schema.params
        },
    }


def synthetic_records(schema: Schema | None) -> list[dict[str, Any]]:
    """One made-up row that fits a column signature: a placeholder per type, no real data."""
    if schema is None or schema.is_tensor_spec():
        return []
    row = {
        spec.name: _PLACEHOLDERS[data_type]
        for spec in schema.inputs
        if spec.name and (data_type := plain_type(spec)) in _PLACEHOLDERS
    }
    return [row] if row else []


def _plain(value: Any) -> Any:
    """A NumPy scalar (a param default) as the Python value, so the document serialises."""
    return value.item() if hasattr(value, "item") else value
