"""Same model directory, same request: we answer what `mlflow models serve` answers.

A zoo of small real models (tests/conformance/zoo.py) is saved with MLflow; for each, our
production command and MLflow's own server start on the same directory, every case is
sent to both, and the answers must agree but for the deliberate differences of
tests/conformance/allowlist.py, which the run prints at the end.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.allowlist import difference_for
from tests.conformance.results import RESULTS, Answer, ModelRun
from tests.conformance.servers import server_pair
from tests.conformance.zoo import JSON, ZooModel, build_zoo, save
from tests.support.clients import ClientPerThread
from tests.support.production import RunningServer

pytestmark = pytest.mark.slow

ZOO = {model.name: model for model in build_zoo()}
CASES = [(model.name, case) for model in ZOO.values() for case in model.cases]
PAIRS_AT_ONCE = 3
CROSS_ROW_CLIENTS = 24


def _post(
    client: httpx.Client | ClientPerThread, server: RunningServer, content_type: str, body: Any
) -> Answer:
    if isinstance(body, bytes):
        content = body
    else:
        content = (body if isinstance(body, str) else json.dumps(body)).encode()
    response = client.post(
        f"{server.base_url}/invocations",
        content=content,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    try:
        parsed = json.loads(response.text)
    except ValueError:
        parsed = response.text
    return Answer(response.status_code, parsed)


def _cross_row_bodies() -> list[dict[str, Any]]:
    return [
        {"dataframe_records": [{"x": float(i)}, {"x": float(i * 7 % 5)}, {"x": 1.5}]}
        for i in range(CROSS_ROW_CLIENTS)
    ]


def _run_model(model: ZooModel, root: Path) -> ModelRun:
    model_dir = root / "models" / model.name
    save(model, model_dir)
    with server_pair(model_dir, root / "work" / model.name, ready=model.ready) as pair:
        ours, reference = pair
        with httpx.Client() as client:
            answers = {
                case: (_post(client, ours, ct, body), _post(client, reference, ct, body))
                for case, (ct, body) in model.cases.items()
            }
            ready_status = client.get(f"{ours.base_url}/readyz", timeout=5).status_code
            concurrent: list[tuple[Answer, Answer]] = []
            if model.name == "cross_row":
                bodies = _cross_row_bodies()
                with (
                    ClientPerThread() as per_thread,
                    ThreadPoolExecutor(CROSS_ROW_CLIENTS) as pool,
                ):
                    ours_answers = list(
                        pool.map(lambda b: _post(per_thread, ours, JSON, b), bodies)
                    )
                concurrent = [
                    (answer, _post(client, reference, JSON, body))
                    for answer, body in zip(ours_answers, bodies, strict=True)
                ]
    return ModelRun(answers, ready_status, concurrent)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelRun]:
    """Every model served by both servers, every case answered: one server pair per model."""
    root = tmp_path_factory.mktemp("conformance")
    with ThreadPoolExecutor(PAIRS_AT_ONCE) as pool:
        results = dict(
            zip(ZOO, pool.map(lambda model: _run_model(model, root), ZOO.values()), strict=True)
        )
    RESULTS.update(results)
    return results


def _nan_as_null(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_nan_as_null(item) for item in value]
    if isinstance(value, dict):
        return {key: _nan_as_null(item) for key, item in value.items()}
    return value


def agree(ours: Answer, reference: Answer) -> bool:
    """Equal status; then equal bodies for a 200, equal error codes for an error."""
    if ours.status != reference.status:
        return False
    if ours.status == 200:
        return _nan_as_null(ours.body) == _nan_as_null(reference.body)
    return ours.error_code == reference.error_code


@pytest.mark.parametrize(("model", "case"), CASES, ids=[f"{m}/{c}" for m, c in CASES])
def test_answers_as_mlflow_serves(runs: dict[str, ModelRun], model: str, case: str) -> None:
    ours, reference = runs[model].answers[case]
    assert ours.status < 500 or model == "failing_model" or difference_for(model, case)
    difference = difference_for(model, case)
    if difference is None:
        assert agree(ours, reference), f"ours {ours} / MLflow {reference}"
        return
    assert reference.status == difference.mlflow_status, f"MLflow now answers {reference}"
    status, error_code = difference.ours
    assert ours.status == status, f"ours {ours}"
    if status != 200:
        assert ours.error_code == error_code, f"ours {ours}"
        assert set(ours.body) == {"error_code", "message"}


def test_every_allowed_difference_is_seen(runs: dict[str, ModelRun]) -> None:
    """An allow-list entry no case needs any more is stale: remove it."""
    from tests.conformance.allowlist import DIFFERENCES

    for difference in DIFFERENCES:
        covered = [
            (model, case)
            for model, run in runs.items()
            for case in run.answers
            if difference.covers(model, case)
        ]
        assert covered, f"no case shows '{difference.name}'"
        for model, case in covered:
            pattern_free = difference.covers(model, case)
            assert pattern_free


def test_a_model_whose_warm_up_fails_stays_not_ready(runs: dict[str, ModelRun]) -> None:
    assert runs["failing_model"].ready_status == 503
    assert all(run.ready_status == 200 for name, run in runs.items() if name != "failing_model")


def test_batching_never_mixes_clients_rows_by_default(runs: dict[str, ModelRun]) -> None:
    """A model that looks across rows, under concurrent load, default settings: each client
    gets exactly what MLflow's server answers for its request alone."""
    concurrent = runs["cross_row"].concurrent
    assert len(concurrent) == CROSS_ROW_CLIENTS
    for ours, reference in concurrent:
        assert ours.status == 200
        assert ours.body == reference.body
