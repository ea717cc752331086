"""Fixtures of the batch tests: models other than the demo in the test registry."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pytest

from registry_scripts._promotion import promote_version
from tests.batch_scoring.models import register_labeller, register_sklearn_classifier
from tests.support.demo import RegisteredDemo


@dataclass(frozen=True)
class BatchModels:
    labeller: str  # registered name; version 1 answers tag "one" and is in Production
    slow_labeller: str  # version 1 sleeps 0.1 s per predict call
    classifier: str  # a scikit-learn classifier of the iris data, version 1 in Production


@pytest.fixture(scope="session")
def batch_models(registry: RegisteredDemo) -> BatchModels:
    client = mlflow.MlflowClient()
    models = BatchModels("batch-labeller", "batch-slow-labeller", "batch-iris")
    promote_version(client, models.labeller, register_labeller(models.labeller, "one"))
    register_labeller(models.slow_labeller, "slow", sleep_seconds=0.1)
    promote_version(client, models.classifier, register_sklearn_classifier(models.classifier))
    return models
