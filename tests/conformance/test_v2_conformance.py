"""Same models, same V2 requests: we answer the Open Inference Protocol as Seldon MLServer
1.7.1 with its MLflow runtime answers it.

The models of tests/conformance/v2_zoo.py and the demo model are served by one MLServer
process (all of them) and by our production command (one per model); every case is sent
to both, and the model metadata is asked of both. Answers must agree but for the
deliberate differences of tests/conformance/v2_allowlist.py (docs/v2-protocol.md renders
that list).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest

from tests.conformance.results import V2_RESULTS, Answer, V2ModelRun
from tests.conformance.servers import start_ours, wait_answering_200
from tests.conformance.v2_allowlist import V2_DIFFERENCES, v2_difference_for
from tests.conformance.v2_servers import Served, require_mlserver, start_mlserver
from tests.conformance.v2_zoo import DEMO, build_v2_zoo, demo_cases
from tests.support.demo import RISKY_ROW, VALID_ROW, RegisteredDemo
from tests.support.production import RunningServer

pytestmark = pytest.mark.slow

ZOO = {model.name: model for model in build_v2_zoo()}
MODEL_CASES = {name: model.cases for name, model in ZOO.items()}
MODEL_CASES[DEMO] = demo_cases(VALID_ROW, RISKY_ROW)
CASES = [(model, case) for model, cases in MODEL_CASES.items() for case in cases]
OURS_AT_ONCE = 3


# The model metadata (GET /v2/models/{name}) is compared as one more case of each model.
METADATA = "metadata"
CASES += [(model, METADATA) for model in MODEL_CASES]


def _answer(response: httpx.Response) -> Answer:
    try:
        return Answer(response.status_code, json.loads(response.text))
    except ValueError:
        return Answer(response.status_code, response.text)


def _infer(client: httpx.Client, server: RunningServer, name: str, body: Any) -> Answer:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        f"{server.base_url}/v2/models/{name}/infer",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    return _answer(response)


def _run(model: str, name: str, ours: RunningServer, mlserver: RunningServer) -> V2ModelRun:
    # A connection per request: MLServer's 500s may close theirs under the next request.
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        answers = {
            case: (_infer(client, ours, name, body), _infer(client, mlserver, name, body))
            for case, body in MODEL_CASES[model].items()
        }
        answers[METADATA] = (
            _answer(client.get(f"{ours.base_url}/v2/models/{name}", timeout=10)),
            _answer(client.get(f"{mlserver.base_url}/v2/models/{name}", timeout=10)),
        )
    return V2ModelRun(name, answers)


def _demo_directory(registry: RegisteredDemo, root: Path) -> Path:
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registry.name}/{registry.version}",
            dst_path=str(root / "demo-export"),
        )
    )


@pytest.fixture(scope="module")
def v2_runs(
    registry: RegisteredDemo, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, V2ModelRun]:
    """One MLServer serving every model, one of ours per model, every case sent to both."""
    require_mlserver()
    root = tmp_path_factory.mktemp("v2-conformance")
    served = {}
    for model in ZOO.values():
        model.build(root / "models" / model.name)
        served[model.name] = Served(model.name, None, root / "models" / model.name)
    served[DEMO] = Served(registry.name, registry.version, _demo_directory(registry, root))
    mlserver = start_mlserver(list(served.values()), root / "work")
    try:

        def run_ours(model: str) -> V2ModelRun:
            work = root / "work" / model
            work.mkdir(parents=True)
            # The demo from the registry, so that ours serves its registry name and version.
            uri = f"models:/{registry.name}/{registry.version}" if model == DEMO else None
            ours = start_ours(uri or served[model].directory, work)
            try:
                wait_answering_200(ours, "/readyz")
                return _run(model, served[model].name, ours, mlserver)
            finally:
                ours.kill()

        with ThreadPoolExecutor(OURS_AT_ONCE) as pool:
            runs = dict(zip(served, pool.map(run_ours, served), strict=True))
    finally:
        mlserver.kill()
    V2_RESULTS.update(runs)
    return runs


def _comparable(body: Any, fields: tuple[str, ...] = ()) -> Any:
    """A 200's body without `id` (MLServer makes up a UUID; ours is the X-Request-ID) and
    without the fields and output tensors an allowed difference names."""
    if not isinstance(body, dict):
        return body
    kept = {k: v for k, v in body.items() if k != "id" and k not in fields}
    if isinstance(kept.get("outputs"), list):
        kept["outputs"] = [o for o in kept["outputs"] if o.get("name") not in fields]
    return kept


def agree(ours: Answer, theirs: Answer, fields: tuple[str, ...] = ()) -> bool:
    """Equal status; for a 200 equal bodies but for `id` and `fields`; an error is V2's
    body in both."""
    if ours.status != theirs.status:
        return False
    if ours.status == 200:
        return bool(_comparable(ours.body, fields) == _comparable(theirs.body, fields))
    return isinstance(theirs.body, dict) and set(theirs.body) == set(ours.body) == {"error"}


@pytest.mark.parametrize(("model", "case"), CASES, ids=[f"{m}/{c}" for m, c in CASES])
def test_answers_as_mlserver_does(v2_runs: dict[str, V2ModelRun], model: str, case: str) -> None:
    ours, theirs = v2_runs[model].answers[case]
    if ours.status >= 400:
        assert set(ours.body) == {"error"}, f"ours {ours}"
        assert ours.status < 500, f"ours {ours}"
    sent = MODEL_CASES[model].get(case)
    if isinstance(sent, dict) and "id" in sent:  # a request's own id comes back from both
        assert ours.body["id"] == theirs.body["id"] == sent["id"]
    difference = v2_difference_for(model, case)
    if difference is None:
        assert agree(ours, theirs), f"ours {ours} / MLServer {theirs}"
        return
    assert theirs.status == difference.mlserver, f"MLServer now answers {theirs}"
    assert ours.status == difference.ours, f"ours {ours}"
    if difference.fields:
        assert ours.body != theirs.body, f"no difference left in {difference.fields}"
        assert agree(ours, theirs, difference.fields), f"ours {ours} / MLServer {theirs}"


def test_every_allowed_difference_is_seen() -> None:
    """An allow-list entry no case needs any more is stale: remove it."""
    for difference in V2_DIFFERENCES:
        assert any(difference.covers(model, case) for model, case in CASES), difference.name
