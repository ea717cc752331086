"""The Open Inference Protocol (V2) in one process: the demo model through the real app, the
codecs on their own, and admission on a V2 inference path through the production worker's
protocol over a real socket. What the real clients and MLServer say is in
test_v2_clients.py and tests/conformance/test_v2_conformance.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from mlflow.types import ColSpec, DataType, Schema
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.errors import BadRequestError, RequestTooLargeError, SchemaMismatchError
from app.main import create_app
from app.observability.stages import STAGES
from app.protocol.budget import RequestBudget
from app.protocol.parsing import InputContract, ScoringRequest
from app.protocol.v2 import (
    InferRequest,
    encode_infer_response,
    output_types,
    parse_infer_request,
)
from app.runtime.model import ServedModel, load_served_model
from app.server.worker import ServingProtocol
from app.settings import Settings
from tests.support.asgi import CountingApp
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo
from tests.support.guarded import log_sklearn_model, register_with_rules
from tests.support.ports import free_port
from tests.support.uvicorn_thread import uvicorn_in_a_thread
from tests.support.waiting import READY_SECONDS, wait_ready

PAYLOAD_TEXT = "do-not-echo-7f3a"
SCHEMA = Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.string, "s", required=False)])
BUDGET = RequestBudget(max_rows=100, max_columns=10, max_cells=150, max_decoded_bytes=10**6)


def _columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    datatypes = {int: "INT64", float: "FP64", str: "BYTES"}
    return [
        {
            "name": name,
            "datatype": datatypes[type(rows[0][name])],
            "shape": [len(rows), 1],
            "data": [row[name] for row in rows],
        }
        for name in rows[0]
    ]


def _infer_path(model: ServedModel) -> str:
    return f"/v2/models/{model.description.name}/infer"


def test_v2_answers_what_invocations_answers(client: TestClient, served_model: ServedModel) -> None:
    rows = [VALID_ROW, RISKY_ROW]
    v2 = client.post(_infer_path(served_model), json={"inputs": _columns(rows), "id": "r-1"})
    mlflow = client.post("/invocations", json={"dataframe_records": rows}).json()["predictions"]
    assert v2.status_code == 200
    answer = v2.json()
    assert answer["id"] == "r-1"
    assert answer["model_name"] == served_model.description.name
    assert answer["model_version"] == served_model.description.version
    by_name = {output["name"]: output for output in answer["outputs"]}
    assert list(by_name) == list(mlflow[0])
    for name, output in by_name.items():
        assert output["shape"] == [2, 1]
        assert output["data"] == [row[name] for row in mlflow]


def test_the_versioned_path_and_the_model_routes(
    client: TestClient, served_model: ServedModel
) -> None:
    name, version = served_model.description.name, served_model.description.version
    body = {"inputs": _columns([VALID_ROW])}
    assert client.post(f"/v2/models/{name}/versions/{version}/infer", json=body).status_code == 200
    assert client.get(f"/v2/models/{name}/versions/{version}/ready").json() == {
        "name": name,
        "ready": True,
    }
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == []
    for path in (
        f"/v2/models/{PAYLOAD_TEXT}/infer",
        f"/v2/models/{name}/versions/{PAYLOAD_TEXT}/infer",
    ):
        refused = client.post(path, json=body)
        assert refused.status_code == 404
        assert refused.json() == {
            "error": f"no such model here; this server serves '{name}' version {version}"
        }
    for path in (f"/v2/models/{PAYLOAD_TEXT}", f"/v2/models/{PAYLOAD_TEXT}/ready"):
        refused = client.get(path)
        assert refused.status_code == 404
        assert PAYLOAD_TEXT not in refused.text
    assert set(client.get("/v2/nothing-here").json()) == {"error"}


@pytest.mark.parametrize(
    ("change", "status", "named"),
    [
        # text where the signature wants a number: the column is named, the text is not
        (lambda inputs: inputs[0].update(datatype="BYTES", data=[PAYLOAD_TEXT]), 422, "'age'"),
        # a datatype's range
        (lambda inputs: inputs[0].update(datatype="INT8", data=[300]), 400, "INT8"),
        # shape and data disagree
        (lambda inputs: inputs[0].update(shape=[2, 1]), 400, "[2, 1]"),
        # a column that is not a column
        (lambda inputs: inputs[0].update(shape=[1, 2], data=[1, 2]), 422, "[rows, 1]"),
        # an input the signature does not know, badly formed: named by position only
        (lambda inputs: inputs.append({"name": PAYLOAD_TEXT, "datatype": "FP64"}), 400, "inputs["),
        # a column left out
        (lambda inputs: inputs.pop(0), 422, "'age'"),
    ],
)
def test_refusals_name_the_problem_in_v2s_body_and_never_a_value(
    client: TestClient,
    served_model: ServedModel,
    change: Callable[[list[dict[str, Any]]], None],
    status: int,
    named: str,
) -> None:
    inputs = _columns([VALID_ROW])
    change(inputs)
    refused = client.post(_infer_path(served_model), json={"inputs": inputs})
    assert refused.status_code == status, refused.text
    assert set(refused.json()) == {"error"}
    assert named in refused.json()["error"]
    assert PAYLOAD_TEXT not in refused.text


def test_the_declared_shape_is_bounded_before_any_value_is_read(
    make_client: Callable[..., TestClient], served_model: ServedModel
) -> None:
    """A shape of a million rows with one value is refused as too large, not as a
    shape that does not hold its data: the cost is decided before anything is built."""
    client = make_client(max_request_rows=1000)
    inputs = _columns([VALID_ROW])
    inputs[0]["shape"] = [1_000_000, 1]
    refused = client.post(_infer_path(served_model), json={"inputs": inputs})
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "the request holds 1000000 rows; the limit is 1000 (MAX_REQUEST_ROWS)"
    }
    metrics = client.get("/metrics").text
    assert 'route="/v2/models/{model_name}/infer",status="413"' in metrics
    assert 'http_requests_rejected_total{reason="too_large"}' in metrics


def test_the_binary_tensor_extension_is_refused(
    client: TestClient, served_model: ServedModel
) -> None:
    refused = client.post(
        _infer_path(served_model),
        content=b"{}",
        headers={"Inference-Header-Content-Length": "2"},
    )
    assert refused.status_code == 415
    assert "binary" in refused.json()["error"]


# --- the codecs on their own ---------------------------------------------------------------
def _parse(payload: Any) -> ScoringRequest:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_infer_request(body, InputContract(SCHEMA), BUDGET).scoring


def test_columns_become_the_lean_paths_column_lists() -> None:
    request = _parse(
        {
            "inputs": [
                {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["x", "y"]},
                {"name": "a", "datatype": "INT64", "shape": [2, 1], "data": [[1], [2]]},
                {"name": "unused", "datatype": "FP64", "shape": [2, 1], "data": [1.0, None]},
            ],
            "parameters": {"content_type": "pd", "threshold": 0.5},
        }
    )
    assert request.data == {"a": [1, 2], "s": ["x", "y"]}
    assert (request.rows, request.batchable) == (2, True)
    assert request.params == {"threshold": 0.5}


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (b"[1, 2]", BadRequestError, "JSON object"),
        ({"inputs": []}, BadRequestError, "non-empty list"),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": [101, 1], "data": [1]}]},
            RequestTooLargeError,
            "MAX_REQUEST_ROWS",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": [1, 151], "data": [1]}]},
            RequestTooLargeError,
            "MAX_REQUEST_CELLS",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "INT64", "shape": [1, 1], "data": [True]}]},
            BadRequestError,
            "INT64",
        ),
        (
            {
                "inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "data": [1]}],
                "parameters": {"content_type": "np"},
            },
            BadRequestError,
            "'pd'",
        ),
        (
            {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "data": ["x"]}]},
            SchemaMismatchError,
            "'a'",
        ),
    ],
)
def test_what_the_parse_refuses(payload: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[")):
        _parse(payload)


def _request(outputs: tuple[str, ...] | None = None) -> InferRequest:
    return InferRequest(ScoringRequest({}, 1, None, batchable=True), "id-1", outputs)


def test_outputs_are_coded_as_mlservers_runtime_codes_them() -> None:
    records = [
        {"p": 0.5, "n": 1, "label": "x", "ok": True, "extra": {"k": 1}},
        {"p": None, "n": 2, "label": "y", "ok": False, "extra": [1]},
    ]
    answer = orjson.loads(
        encode_infer_response(
            records,
            model_name="m",
            model_version=None,
            request=_request(),
            declared_types=output_types(
                Schema([ColSpec(DataType.float, "p"), ColSpec(DataType.integer, "n")])
            ),
        )
    )
    assert answer["parameters"] == {"content_type": "pd"}
    assert "model_version" not in answer
    assert answer["outputs"] == [
        {"name": "p", "shape": [2, 1], "datatype": "FP32", "data": [0.5, None]},
        {"name": "n", "shape": [2, 1], "datatype": "INT32", "data": [1, 2]},
        {
            "name": "label",
            "shape": [2, 1],
            "datatype": "BYTES",
            "parameters": {"content_type": "str"},
            "data": ["x", "y"],
        },
        {"name": "ok", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]},
        {
            "name": "extra",
            "shape": [2, 1],
            "datatype": "BYTES",
            "parameters": {"content_type": "pd_json"},
            "data": ['{"k":1}', "[1]"],
        },
    ]
    arrays = orjson.loads(
        encode_infer_response(
            [[1.0, 2.0], [3.0, float("nan")]],
            model_name="m",
            model_version="3",
            request=_request(),
            declared_types=output_types(None),
        )
    )
    assert arrays["outputs"] == [
        {
            "name": "output-1",
            "shape": [2, 2],
            "datatype": "FP64",
            "parameters": {"content_type": "np"},
            "data": [1.0, 2.0, 3.0, None],
        }
    ]
    with pytest.raises(BadRequestError, match="requested output"):
        encode_infer_response(
            records,
            model_name="m",
            model_version=None,
            request=_request(("nope",)),
            declared_types=output_types(None),
        )


# --- admission on the V2 path, over a real socket ------------------------------------------
def test_the_worker_sheds_a_v2_inference_past_the_bound_in_v2s_body(
    served_model: ServedModel,
) -> None:
    """One /invocations request holds the only slot; a V2 inference is refused by the
    worker's protocol before the app (early refusal keys on the V2 path too)."""
    app = CountingApp(create_app(Settings(max_concurrent_requests=1), model=served_model))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=ServingProtocol, log_config=None)
    with uvicorn_in_a_thread(config):
        shed, metrics = asyncio.run(_shed_v2(f"http://127.0.0.1:{port}", served_model))
    assert app.entered == ["/invocations", "/metrics"], "the refused request entered the app"
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json() == {"error": "this worker holds its limit of 1 requests; retry shortly"}
    assert (
        'http_requests_total{method="POST",route="/v2/models/{model_name}/infer",status="503"} 1.0'
        in metrics
    )


async def _shed_v2(base_url: str, served_model: ServedModel) -> tuple[httpx.Response, str]:
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b'{"dataframe_records": '
        await release.wait()
        yield b"nope"

    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        held = asyncio.create_task(
            client.post("/invocations", content=held_body(), headers=headers)
        )
        await asyncio.sleep(0.3)
        shed = await client.post(_infer_path(served_model), json={"inputs": _columns([VALID_ROW])})
        release.set()
        assert (await held).status_code == 400
        metrics = (await client.get("/metrics")).text
    return shed, metrics


# --- guardrails: the same rules as /invocations ---------------------------------------------
def test_a_versions_enforced_rule_refuses_a_v2_request_as_it_refuses_invocations(
    registry: RegisteredDemo, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """V2 input reaches the same scorer: the version's rules run on it, and the refusal
    names the rule and the column in V2's body, never the value."""
    rules = (
        "version: 1\nrules:\n"
        "  - {id: adult, column: age, min: 18, max: 100, severity: critical, mode: enforce}\n"
    )
    name = "v2-guarded"
    version = register_with_rules(name, log_sklearn_model("classifier"), rules, tmp_path)
    client = make_client(load_served_model(f"models:/{name}/{version}"))
    columns = [
        {"name": "age", "datatype": "INT64", "shape": [2, 1], "data": [30, 7357]},
        {"name": "amount", "datatype": "FP64", "shape": [2, 1], "data": [10.0, 20.0]},
    ]
    refused = client.post(f"/v2/models/{name}/infer", json={"inputs": columns})
    invocations = client.post(
        "/invocations",
        json={"dataframe_records": [{"age": 30, "amount": 10.0}, {"age": 7357, "amount": 20.0}]},
    )
    assert refused.status_code == invocations.status_code == 422
    assert refused.json() == {"error": invocations.json()["message"]}
    assert "adult" in refused.json()["error"]
    assert "7357" not in refused.text
    columns[0]["data"] = [30, 40]
    assert client.post(f"/v2/models/{name}/infer", json={"inputs": columns}).status_code == 200


# --- tracing and stage timings: the same as /invocations -----------------------------------
def test_a_v2_inference_is_traced_with_its_route_template_and_every_stage(
    served_model: ServedModel,
) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(Settings(), model=served_model, span_exporter=exporter)
    with TestClient(app) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        answered = client.post(
            f"/v2/models/{served_model.description.name}/infer",
            json={"inputs": _columns([VALID_ROW])},
        )
        assert answered.status_code == 200
        assert client.get("/v2/health/ready").status_code == 200  # a probe: not traced
    spans = exporter.get_finished_spans()
    [server] = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.name == "POST /v2/models/{model_name}/infer"
    assert (server.attributes or {})["http.route"] == "/v2/models/{model_name}/infer"
    assert (server.attributes or {})["request.rows"] == 1
    stages = {
        span.name
        for span in spans
        if span.parent is not None and span.parent.span_id == server.context.span_id
    }
    assert stages == set(STAGES)


def test_the_openapi_document_describes_v2_inference_with_an_example_that_answers(
    client: TestClient, served_model: ServedModel
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/v2/models/{model_name}/infer"]["post"]
    assert "/v2/models/{model_name}/versions/{model_version}/infer" in paths
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert [tensor["name"] for tensor in example["inputs"]] == list(VALID_ROW)
    assert client.post(_infer_path(served_model), json=example).status_code == 200
    errors = {status for status in operation["responses"] if status != "200"}
    assert {"400", "404", "413", "422", "503"} <= errors
    schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["error"]
