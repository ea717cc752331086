"""The V2 clients teams already use, unchanged, against the production command: Triton's
`tritonclient[http]` and KServe's `InferenceRESTClient`.

Three servers (one worker each) are started once for the module: the demo model from the
test registry, and two models of the V2 conformance zoo, a DataFrame-returning PythonModel
with text output and a named-tensor model. Each client asks health, readiness and
metadata and infers; refusals come back as 4xx with V2's `{"error"}` body, which the
clients turn into their own exceptions.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]  # ships no type information
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from model_wrapper.rules import DECISION_BY_RISK_LEVEL
from tests.conformance.v2_zoo import AB_A, AB_B, build_v2_zoo
from tests.support import PROJECT_ROOT
from tests.support.ci import missing
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo
from tests.support.production import RunningServer, start_server, wait_ready

pytestmark = pytest.mark.slow

KSERVE_PYTHON = PROJECT_ROOT / ".venv-kserve-client" / "bin" / "python"
KSERVE_SCRIPT = Path(__file__).with_name("kserve_client.py")
ZOO = {model.name: model for model in build_v2_zoo()}
FRAME, TENSORS = "frame_output", "named_tensors"


@pytest.fixture(scope="module")
def servers(
    registry: RegisteredDemo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    """The demo (its registry name), frame_output and named_tensors, one worker each."""
    root = tmp_path_factory.mktemp("v2-clients")
    uris = {"demo": f"models:/{registry.name}/Production"}
    for name in (FRAME, TENSORS):
        ZOO[name].build(root / "models" / name)
        uris[name] = str(root / "models" / name)
    started: dict[str, RunningServer] = {}
    try:
        for name, uri in uris.items():
            (root / name).mkdir()
            started[name] = start_server(registry, root / name, workers=1, MODEL_URI=uri)
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(wait_ready, started.values()))
        yield started
    finally:
        for server in started.values():
            server.kill()


def _triton(server: RunningServer) -> Any:
    return triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))


def _column(name: str, values: list[Any]) -> Any:
    """One column as a tritonclient input: shape [rows, 1], JSON data (not binary)."""
    array = np.asarray(values)
    if array.dtype.kind in "US":
        array, datatype = array.astype(object), "BYTES"
    else:
        datatype = {"i": "INT64", "f": "FP64", "b": "BOOL"}[array.dtype.kind]
    column = triton.InferInput(name, [len(values), 1], datatype)
    column.set_data_from_numpy(array.reshape(-1, 1), binary_data=False)
    return column


def _text(array: Any) -> list[Any]:
    """A tensor's values, flat; BYTES as str (tritonclient gives str or bytes)."""
    return [v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]


def _demo_columns(rows: list[dict[str, Any]]) -> list[Any]:
    return [_column(name, [row[name] for row in rows]) for name in rows[0]]


def test_tritonclient_health_readiness_and_metadata(
    servers: dict[str, RunningServer], registry: RegisteredDemo
) -> None:
    client = _triton(servers["demo"])
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(registry.name)
    assert client.is_model_ready(registry.name, registry.version)
    assert not client.is_model_ready("another-model")
    assert not client.is_model_ready(registry.name, "999")
    metadata = client.get_model_metadata(registry.name)
    assert metadata["name"] == registry.name
    assert metadata["versions"] == [registry.version]
    assert [tensor["name"] for tensor in metadata["inputs"]] == list(VALID_ROW)
    assert {tensor["shape"] == [-1, 1] for tensor in metadata["inputs"]} == {True}
    assert {t["name"]: t["datatype"] for t in metadata["outputs"]}["risk_level"] == "BYTES"
    assert metadata["parameters"] == {"content_type": "pd"}


def test_tritonclient_scores_the_demo_as_invocations_does(
    servers: dict[str, RunningServer], registry: RegisteredDemo
) -> None:
    """Same rows by V2 and by MLflow's protocol: the same predictions, field by field."""
    rows = [VALID_ROW, RISKY_ROW]
    result = _triton(servers["demo"]).infer(
        registry.name, _demo_columns(rows), model_version=registry.version
    )
    invocations = httpx.post(
        f"{servers['demo'].base_url}/invocations",
        json={"dataframe_records": rows},
        timeout=30,
    ).json()["predictions"]
    for field in ("score", "risk_level", "decision", "model_version"):
        assert _text(result.as_numpy(field)) == [row[field] for row in invocations]
    assert result.as_numpy("score").shape == (2, 1)
    assert result.get_response()["model_version"] == registry.version


def test_tritonclient_non_demo_models(servers: dict[str, RunningServer]) -> None:
    frame = _triton(servers[FRAME]).infer(FRAME, [_column("a", AB_A), _column("b", AB_B)])
    assert frame.as_numpy("total").reshape(-1).tolist() == [1.5, 3.5, 5.5]
    assert _text(frame.as_numpy("label")) == ["small", "big", "big"]
    assert frame.as_numpy("flag").reshape(-1).tolist() == [False, True, True]
    left = triton.InferInput("left", [2, 2], "FP64")
    left.set_data_from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), binary_data=False)
    right = triton.InferInput("right", [2, 2], "FP64")
    right.set_data_from_numpy(np.array([[0.5, 0.5], [1.5, 2.5]]), binary_data=False)
    tensors = _triton(servers[TENSORS]).infer(TENSORS, [left, right])
    assert tensors.as_numpy("left").reshape(-1).tolist() == [3.0, 7.0]
    assert tensors.as_numpy("right").reshape(-1).tolist() == [1.0, 4.0]


@pytest.mark.parametrize(
    ("model", "inputs", "status", "named"),
    [
        # a column of the signature that is not sent: 422 naming it
        (FRAME, lambda: [_column("a", AB_A)], "422", "'b'"),
        # decimals for a long column: 422 naming the column and its type
        (FRAME, lambda: [_column("a", [1.5, 2.5, 3.5]), _column("b", AB_B)], "422", "'a'"),
        # text in a numeric column: 422 naming it
        (FRAME, lambda: [_column("a", ["x", "y", "z"]), _column("b", AB_B)], "422", "'a'"),
        # a tensor missing from a named-tensor signature
        (TENSORS, lambda: [_column("left", [1.0])], "422", "'right'"),
    ],
)
def test_tritonclient_refusals_are_4xx_that_name_the_problem(
    servers: dict[str, RunningServer], model: str, inputs: Any, status: str, named: str
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        _triton(servers[model]).infer(model, inputs())
    assert raised.value.status() == status
    assert named in raised.value.message()


def test_tritonclient_wrong_model_name_and_binary_tensors_are_refused(
    servers: dict[str, RunningServer],
) -> None:
    client = _triton(servers[FRAME])
    with pytest.raises(InferenceServerException) as raised:
        client.infer("another-model", [_column("a", AB_A), _column("b", AB_B)])
    assert raised.value.status() == "404"
    assert "serves 'frame_output'" in raised.value.message()
    binary = triton.InferInput("a", [3, 1], "INT64")
    binary.set_data_from_numpy(np.array([[1], [2], [3]]), binary_data=True)
    with pytest.raises(InferenceServerException) as raised:
        client.infer(FRAME, [binary, _column("b", AB_B)])
    assert raised.value.status() == "415"
    assert "binary" in raised.value.message()


def _run_kserve_client(plan: dict[str, Any]) -> dict[str, Any]:
    if not KSERVE_PYTHON.is_file():
        missing("KServe's client is not installed in .venv-kserve-client: `make test` builds it")
    completed = subprocess.run(
        [str(KSERVE_PYTHON), str(KSERVE_SCRIPT)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return seen


def _tensor(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": [len(data), 1], "datatype": datatype, "data": data}


def test_kserve_client_on_the_demo(
    servers: dict[str, RunningServer], registry: RegisteredDemo
) -> None:
    datatypes = {int: "INT64", float: "FP64", str: "BYTES"}
    inputs = [_tensor(name, datatypes[type(value)], [value]) for name, value in VALID_ROW.items()]
    seen = _run_kserve_client(
        {
            "base_url": servers["demo"].base_url,
            "model": registry.name,
            "inputs": inputs,
            "bad_inputs": inputs[1:],  # the first column left out
        }
    )
    assert seen["server_live"] is True
    assert seen["server_ready"] is True
    assert seen["model_ready"] is True
    assert seen["model_name"] == registry.name
    outputs = seen["outputs"]
    assert outputs["decision"]["datatype"] == "BYTES"
    assert outputs["decision"]["shape"] == [1, 1]
    assert outputs["decision"]["data"][0] in DECISION_BY_RISK_LEVEL.values()
    assert 0.0 <= outputs["score"]["data"][0] <= 1.0
    assert seen["refused"]["status"] == 422
    assert f"'{next(iter(VALID_ROW))}'" in seen["refused"]["message"]


def test_kserve_client_on_a_frame_returning_model(servers: dict[str, RunningServer]) -> None:
    seen = _run_kserve_client(
        {
            "base_url": servers[FRAME].base_url,
            "model": FRAME,
            "inputs": [_tensor("a", "INT64", AB_A), _tensor("b", "FP64", AB_B)],
            "bad_inputs": [_tensor("a", "INT64", AB_A), _tensor("b", "BYTES", ["x", "y", "z"])],
        }
    )
    assert (seen["server_live"], seen["server_ready"], seen["model_ready"]) == (True,) * 3
    assert seen["outputs"]["total"]["data"] == [1.5, 3.5, 5.5]
    assert seen["outputs"]["label"]["data"] == ["small", "big", "big"]
    assert seen["refused"]["status"] == 422
    assert "'b'" in seen["refused"]["message"]
