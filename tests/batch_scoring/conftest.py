"""Fixtures of the batch tests: models other than the demo in the test registry."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pytest

from registry_scripts._promotion import promote_version
from tests.batch_scoring.models import register_labeller, register_sklearn_classifier
from tests.support.demo import RegisteredDemo
from tests.support.guarded import log_frame_model, register_with_rules


@dataclass(frozen=True)
class BatchModels:
    labeller: str  # registered name; version 1 answers tag "one" and is in Production
    slow_labeller: str  # version 1 sleeps 0.1 s per predict call
    classifier: str  # a scikit-learn classifier of the iris data, version 1 in Production
    guarded: str  # tests.support.guarded's DataFrame model, version 1 with GUARDED_RULES


# Enforced on an input column and on the answer, warned on another column.
GUARDED_RULES = """\
version: 1
rules:
  - id: adult
    column: age
    min: 21
    severity: critical
    mode: enforce
  - id: score-bound
    output: score
    max: 3.5
    severity: critical
    mode: enforce
  - id: channel-known
    column: channel
    in: [web, branch]
    severity: major
    mode: warn
"""


@pytest.fixture(scope="session")
def batch_models(registry: RegisteredDemo, tmp_path_factory: pytest.TempPathFactory) -> BatchModels:
    client = mlflow.MlflowClient()
    models = BatchModels("batch-labeller", "batch-slow-labeller", "batch-iris", "batch-guarded")
    promote_version(client, models.labeller, register_labeller(models.labeller, "one"))
    register_labeller(models.slow_labeller, "slow", sleep_seconds=0.1)
    promote_version(client, models.classifier, register_sklearn_classifier(models.classifier))
    register_with_rules(
        models.guarded,
        log_frame_model("model"),
        GUARDED_RULES,
        tmp_path_factory.mktemp("rules"),
    )
    return models
