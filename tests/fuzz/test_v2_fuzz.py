"""Fuzzing the V2 inference route: bodies of V2's shape with names, datatypes, shapes, data
and parameters drawn at random (some right, most wrong), sent to the real app serving the
demo model. Never a 5xx, always V2's error body, never a traceback, never a drawn text
echoed back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.protocol.v2 import DATATYPES
from app.runtime.model import ServedModel
from app.settings import Settings
from tests.fuzz.support import error_body_problem, traceback_in
from tests.support.demo import VALID_ROW
from tests.support.waiting import READY_SECONDS, wait_ready

# Drawn text carries this marker, so an echo of it is found wherever it lands.
MARKER = "zq9x"
FUZZ_SETTINGS = settings(
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    max_examples=150,
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5).map(lambda text: MARKER + text),
)
_data = st.recursive(
    st.lists(_scalars, max_size=6),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=20,
)
_names = st.sampled_from([*VALID_ROW, "x"]) | st.text(max_size=6).map(lambda t: MARKER + t)
_datatypes = st.sampled_from(sorted(DATATYPES)) | st.sampled_from(["INT65", "", "fp64"])
_shapes = st.lists(st.integers(min_value=-2, max_value=12), min_size=0, max_size=4) | st.just(
    [10**12, 1]
)
_tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": _names,
        "datatype": _datatypes,
        "shape": _shapes,
        "data": _data | _scalars,
        "parameters": st.fixed_dictionaries(
            {}, optional={"content_type": st.sampled_from(["str", "np", "pd_json", MARKER])}
        ),
    },
)
_valid_columns = st.just(
    [
        {
            "name": name,
            "datatype": {int: "INT64", float: "FP64", str: "BYTES"}[type(value)],
            "shape": [1, 1],
            "data": [value],
        }
        for name, value in VALID_ROW.items()
    ]
)
_payloads = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.lists(_tensor, max_size=10) | _valid_columns | _scalars,
        "parameters": st.dictionaries(st.sampled_from(["content_type", "x", MARKER]), _scalars)
        | _scalars,
        "outputs": st.lists(st.fixed_dictionaries({"name": _names}), max_size=2) | _scalars,
        "id": st.text(max_size=8) | _scalars,
    },
)


@pytest.fixture(scope="module")
def v2_client(served_model: ServedModel) -> Iterator[TestClient]:
    """An app of its own that answers a server fault with its 500, as Uvicorn would."""
    app = create_app(Settings(), model=served_model)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        yield client


@FUZZ_SETTINGS
@given(payload=_payloads)
def test_v2_inference_never_answers_5xx_nor_echoes(
    payload: dict[str, Any], v2_client: TestClient, served_model: ServedModel
) -> None:
    response = v2_client.post(
        f"/v2/models/{served_model.description.name}/infer",
        content=json.dumps(payload).encode(),  # integers past 64 bits too
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    problem = error_body_problem(
        response.status_code, response.headers.get("content-type", ""), response.content, v2=True
    )
    assert problem is None, problem
    assert not traceback_in(response.text)
    if response.status_code >= 400:
        assert MARKER not in response.text, response.text
