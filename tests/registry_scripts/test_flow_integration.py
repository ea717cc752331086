"""The whole registry flow, on a real `mlflow server` and on the embedded SQLite store.

register v1 and v2, the gate rejects a deliberately bad model, promote v1 then v2, both
Production URIs resolve to v2 and a freshly started serving app serves v2, roll back, both
resolve to v1 and a fresh app serves v1.
"""

from __future__ import annotations

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from registry_scripts import promote, register, resolve, rollback, status, validate
from registry_scripts.demo_data import LABEL, make_credit_dataset
from registry_scripts.train import MODEL_NAME, train_demo_model
from tests.registry_scripts.support import (
    DEMO_TRAINING,
    TEST_FLOOR,
    CommandRunner,
    register_demo_version,
)
from tests.support.waiting import READY_SECONDS, wait_ready

pytestmark = pytest.mark.slow

PRODUCTION_URIS = (f"models:/{MODEL_NAME}/Production", f"models:/{MODEL_NAME}@production")


@pytest.fixture(params=["mlflow-server", "sqlite"])
def registry_uri(request: pytest.FixtureRequest) -> str:
    """Each backend the commands must work against, empty of our model at the start."""
    fixture = "server_registry" if request.param == "mlflow-server" else "sqlite_registry"
    uri: str = request.getfixturevalue(fixture)
    client = MlflowClient(uri)
    # The server outlives a test: start from a registry without our model.
    if client.search_registered_models(f"name = '{MODEL_NAME}'"):
        client.delete_registered_model(MODEL_NAME)
    return uri


def served_version(model_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Start the serving app as the production command does (settings from the environment)
    and return the registry version it reports."""
    from app.main import create_app

    applicant = make_credit_dataset(n_rows=1, seed=3).drop(columns=[LABEL])
    with monkeypatch.context() as patch:
        patch.setenv("MODEL_URI", model_uri)
        with TestClient(create_app()) as client:
            # The warm-up prediction runs in the background after start-up.
            wait_ready("/readyz", READY_SECONDS, get=client.get)
            described = client.get("/version").json()
            scored = client.post(
                "/invocations", json={"dataframe_records": applicant.to_dict(orient="records")}
            )
    assert scored.status_code == 200, scored.text
    assert described["name"] == MODEL_NAME
    return str(described["version"])


def test_register_gate_promote_resolve_serve_and_roll_back(
    registry_uri: str,
    run_command: CommandRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = MlflowClient(registry_uri)

    # register: v1 from a run id, v2 from a logged-model URI, v3 deliberately bad
    first = train_demo_model(**DEMO_TRAINING)
    code, registered = run_command(register.main, ["--run-id", first.run_id])
    assert (code, registered["version"]) == (0, "1")
    second = train_demo_model(**DEMO_TRAINING)
    code, registered = run_command(register.main, ["--model-uri", second.model_uri])
    assert (code, registered["version"], registered["run_id"]) == (0, "2", second.run_id)
    bad = register_demo_version(client, bad=True)

    # the gate: the bad model is rejected with its reason, the good ones pass
    code, verdict = run_command(validate.main, ["--version", bad, "--floor", TEST_FLOOR])
    assert code == 3
    assert "below the floor" in str(verdict["reason"])
    for version in ("1", "2"):
        code, verdict = run_command(validate.main, ["--version", version, "--floor", TEST_FLOOR])
        assert code == 0, verdict

    # a rejected version cannot be promoted through the gate
    code, _ = run_command(promote.main, ["--version", bad, "--require-gate"])
    assert code == 3

    # promote v1, then v2
    for version in ("1", "2"):
        code, promoted = run_command(promote.main, ["--version", version, "--require-gate"])
        assert (code, promoted["version"], promoted["changed"]) == (0, version, True)
    code, again = run_command(promote.main, ["--version", "2"])
    assert (code, again["changed"]) == (0, False)

    for uri in PRODUCTION_URIS:
        code, resolved = run_command(resolve.main, ["--uri", uri])
        assert (code, resolved["version"]) == (0, "2")
        assert served_version(uri, monkeypatch) == "2"

    # roll back: both URIs and a fresh server go back to v1
    code, rolled = run_command(rollback.main, [])
    assert (code, rolled["version"], rolled["rolled_back_from"]) == (0, "1", "2")
    for uri in PRODUCTION_URIS:
        code, resolved = run_command(resolve.main, ["--uri", uri])
        assert (code, resolved["version"]) == (0, "1")
        assert served_version(uri, monkeypatch) == "1"

    code, described = run_command(status.main, [])
    assert code == 0
    assert described["production"] == {"alias": "1", "stage": "1"}
    assert described["consistent"] is True
    stages = {v["version"]: v["stage"] for v in described["versions"]}
    assert stages == {"1": "Production", "2": "Archived", "3": "None"}


def test_artifacts_go_through_the_server(server_registry: str) -> None:
    """The server proxies artifacts: clients never need the server's disk."""
    experiment = mlflow.get_experiment_by_name("registry-tests")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
