"""The quality gate, `python -m registry_scripts.validate`, on real demo and tiny models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from registry_scripts import validate
from registry_scripts._promotion import promote_version
from registry_scripts._registration import register_model_version
from tests.registry_scripts.support import TEST_FLOOR, CommandRunner

NAME = "credit-risk-scoring"


def gate_tags(client: MlflowClient, version: str) -> dict[str, str]:
    tags = client.get_model_version(NAME, version).tags
    return {k: v for k, v in tags.items() if k.startswith("gate.")}


def test_good_candidate_passes_on_its_logged_holdout(
    client: MlflowClient, register_demo: Callable[..., str], run_command: CommandRunner
) -> None:
    v1 = register_demo()

    code, result = run_command(validate.main, ["--version", v1, "--floor", TEST_FLOOR])

    assert (code, result["ok"], result["passed"]) == (0, True, True)
    assert result["value"] > float(TEST_FLOOR)
    assert result["baseline_version"] is None
    assert result["data"].endswith("/holdout/holdout.csv")
    tags = gate_tags(client, v1)
    assert tags["gate.status"] == "passed"
    assert float(tags["gate.value"]) == pytest.approx(result["value"], abs=1e-6)


def test_deliberately_bad_model_fails_below_the_floor(
    client: MlflowClient, register_demo: Callable[..., str], run_command: CommandRunner
) -> None:
    bad = register_demo(bad=True)

    code, result = run_command(validate.main, ["--version", bad, "--floor", TEST_FLOOR])

    assert (code, result["ok"], result["passed"]) == (3, False, False)
    assert "below the floor" in result["reason"]
    assert "below the floor" in result["error"]
    assert gate_tags(client, bad)["gate.status"] == "failed"


def test_candidate_worse_than_production_by_more_than_the_margin_fails(
    client: MlflowClient, register_demo: Callable[..., str], run_command: CommandRunner
) -> None:
    good = register_demo()
    promote_version(client, NAME, good)
    bad = register_demo(bad=True)

    code, result = run_command(
        validate.main, ["--version", bad, "--floor", "0.3", "--margin", "0.02"]
    )

    assert code == 3
    assert result["baseline_version"] == good
    assert result["baseline_value"] - result["value"] > 0.02
    assert f"worse than Production version {good}" in result["reason"]
    assert gate_tags(client, bad)["gate.baseline_version"] == good


def test_equal_candidate_passes_against_production(
    client: MlflowClient, register_demo: Callable[..., str], run_command: CommandRunner
) -> None:
    v1 = register_demo()
    promote_version(client, NAME, v1)
    v2 = register_demo()

    code, result = run_command(validate.main, ["--version", v2, "--floor", TEST_FLOOR])

    assert code == 0
    assert result["baseline_version"] == v1
    assert "within 0.0200 of Production" in result["reason"]


def test_promote_require_gate_accepts_a_validated_version(
    client: MlflowClient, register_demo: Callable[..., str], run_command: CommandRunner
) -> None:
    from registry_scripts import promote

    v1 = register_demo()
    run_command(validate.main, ["--version", v1, "--floor", TEST_FLOOR, "--margin", "0.05"])
    code, _ = run_command(promote.main, ["--version", v1, "--require-gate"])
    assert code == 0
    tags = client.get_model_version("credit-risk-scoring", v1).tags
    audit = {k: v for k, v in tags.items() if k.startswith("audit.promoted_gate_")}
    assert audit == {
        "audit.promoted_gate_metric": "auc",
        "audit.promoted_gate_floor": TEST_FLOOR,
        "audit.promoted_gate_margin": "0.05",
        "audit.promoted_gate_value": tags["gate.value"],
    }


# Tiny scikit-learn models: their predict returns an array, not the demo's DataFrame.


def log_and_register_tiny(client: MlflowClient, *, signature: bool) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"a": rng.random(60), "b": rng.random(60)})
    data["defaulted"] = (data["a"] > 0.5).astype(int)
    features = data[["a", "b"]]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(features, data["defaulted"]),
            name="model",
            signature=mlflow.models.infer_signature(features) if signature else None,
            pip_requirements=["scikit-learn"],
        )
    return str(register_model_version(client, info.model_uri, NAME).version), data


def test_model_without_signature_fails(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version, data = log_and_register_tiny(client, signature=False)
    data.to_csv(tmp_path / "holdout.csv", index=False)

    code, result = run_command(
        validate.main, ["--version", version, "--data", str(tmp_path / "holdout.csv")]
    )

    assert code == 3
    assert "has no signature" in result["reason"]


def test_array_predictions_are_scored_from_a_given_parquet_file(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version, data = log_and_register_tiny(client, signature=True)
    data.to_parquet(tmp_path / "holdout.parquet")

    code, result = run_command(
        validate.main, ["--version", version, "--data", str(tmp_path / "holdout.parquet")]
    )

    assert code == 0, result
    assert result["rows"] == 60


def test_failing_smoke_prediction_fails_the_gate(
    client: MlflowClient, run_command: CommandRunner, tmp_path: Path
) -> None:
    version, data = log_and_register_tiny(client, signature=True)
    data.rename(columns={"a": "c"}).to_csv(tmp_path / "other.csv", index=False)

    code, result = run_command(
        validate.main, ["--version", version, "--data", str(tmp_path / "other.csv")]
    )

    assert code == 3
    assert f"version {version} failed to predict" in result["reason"]


def test_run_without_logged_holdout_fails_and_asks_for_data(
    client: MlflowClient, run_command: CommandRunner
) -> None:
    version, _ = log_and_register_tiny(client, signature=True)

    code, result = run_command(validate.main, ["--version", version])

    assert code == 3
    assert "pass --data" in result["reason"]


@pytest.mark.parametrize(
    ("extra", "needs_file"),
    [
        (["--data", "missing.csv"], False),
        (["--label-column", "nope"], True),
        (["--metric", "accuracy"], False),
        (["--floor", "high"], False),
    ],
)
def test_usage_errors_exit_2(
    client: MlflowClient,
    run_command: CommandRunner,
    tmp_path: Path,
    extra: list[str],
    needs_file: bool,
) -> None:
    version, data = log_and_register_tiny(client, signature=True)
    if needs_file:
        data.to_csv(tmp_path / "holdout.csv", index=False)
        extra = [*extra, "--data", str(tmp_path / "holdout.csv")]
    code, _ = run_command(validate.main, ["--version", version, *extra])
    assert code == 2
