"""Shared fixtures: a real SQLite registry with the demo model trained, registered, promoted.

Training uses fewer rows and trees than the demo so the suite stays quick; the model is
the same pipeline (scikit-learn preprocessing + XGBoost) wrapped the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator

import mlflow
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runtime.model import ServedModel, load_served_model
from app.settings import Settings
from registry_scripts._promotion import promote_version
from registry_scripts._registration import register_model_version
from registry_scripts.train import EXPERIMENT, MODEL_NAME, train_demo_model
from tests.support import tiers
from tests.support.demo import PRODUCTION_URI, RegisteredDemo
from tests.support.waiting import READY_SECONDS, wait_ready


def pytest_configure(config: pytest.Config) -> None:
    tiers.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tiers.mark_slow(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Tests not marked slow run with the process check armed (tests/support/tiers.py)."""
    with tiers.PROCESS_CHECK.armed(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    tiers.PROCESS_CHECK.fail_report(report)
    return report


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisteredDemo]:
    """The demo model as version 1, promoted to Production, in a fresh SQLite registry."""
    root = tmp_path_factory.mktemp("registry")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    # Artifacts next to the database, not in ./mlruns of whatever directory tests run in.
    mlflow.MlflowClient().create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    result = train_demo_model(n_rows=3000, n_estimators=60)
    client = mlflow.MlflowClient()
    version = register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
    promote_version(client, MODEL_NAME, version.version)
    yield RegisteredDemo(tracking_uri, MODEL_NAME, str(version.version), result.run_id)
    # None restores MLflow's default; its annotation leaves None out.
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="session")
def served_model(registry: RegisteredDemo) -> ServedModel:
    return load_served_model(PRODUCTION_URI)


@pytest.fixture(scope="session")
def make_client(served_model: ServedModel) -> Iterator[Callable[..., TestClient]]:
    """Build a started (lifespan run, warmed up) TestClient around a model."""
    clients: list[TestClient] = []

    def make(model: ServedModel = served_model, **settings: object) -> TestClient:
        client = TestClient(create_app(Settings(**settings), model=model))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        wait_ready("/readyz", READY_SECONDS, get=client.get)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
