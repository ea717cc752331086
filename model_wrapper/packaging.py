"""Log a fitted estimator as a RiskScoringModel: signature, example, pinned requirements, code."""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from model_wrapper.profile import build_training_profile
from model_wrapper.rules import RiskThresholds
from model_wrapper.scoring_model import ESTIMATOR_ARTIFACT

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_CODE = PACKAGE_DIR / "model_code.py"
# The demo's business rules, attached to each version registered (registry_scripts.train).
DEMO_RULES_FILE = PACKAGE_DIR / "guardrails.yaml"

# What the wrapper needs at load time, pinned to the versions it was trained with.
# requirements.txt pins the same versions for the serving image (tests check they agree).
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "xgboost-cpu", "pandas", "numpy", "joblib")

_DTYPE_KIND_TO_MLFLOW = {"i": "long", "u": "long", "f": "double", "b": "boolean"}


def pinned_model_requirements() -> list[str]:
    """`name==version` for each package the model needs, as installed here."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def input_schema_for(features: pd.DataFrame) -> Schema:
    """Column-based input schema: integers are long, floats double, anything else string."""
    return Schema(
        [
            ColSpec(_DTYPE_KIND_TO_MLFLOW.get(features[column].dtype.kind, "string"), column)
            for column in features.columns
        ]
    )


def build_signature(features: pd.DataFrame, thresholds: RiskThresholds) -> ModelSignature:
    outputs = Schema(
        [
            ColSpec("double", "score"),
            ColSpec("string", "risk_level"),
            ColSpec("string", "decision"),
            ColSpec("string", "model_name"),
            ColSpec("string", "model_version"),
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("low_threshold", "double", thresholds.low),
            ParamSpec("high_threshold", "double", thresholds.high),
        ]
    )
    return ModelSignature(inputs=input_schema_for(features), outputs=outputs, params=params)


def log_scoring_model(
    estimator: Any,
    features: pd.DataFrame,
    *,
    model_name: str,
    thresholds: RiskThresholds | None = None,
    artifact_name: str = "model",
) -> ModelInfo:
    """Log `estimator` wrapped in RiskScoringModel to the active run.

    `features` are training rows: their columns and dtypes give the input schema, the
    first rows become the input example, and their distribution (with the scores the
    estimator gives them) is logged as the training profile for drift monitoring. The
    wrapper is logged as code (models from code) with the `model_wrapper` package, so
    loading needs no pickled class from this process.
    """
    thresholds = thresholds or RiskThresholds()
    profile = build_training_profile(features, estimator.predict_proba(features)[:, 1])
    with tempfile.TemporaryDirectory() as workdir:
        estimator_path = Path(workdir) / "estimator.joblib"
        joblib.dump(estimator, estimator_path)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name=artifact_name,
            python_model=str(MODEL_CODE),
            code_paths=[str(PACKAGE_DIR)],
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_path)},
            model_config={
                "model_name": model_name,
                # Filled in by the server from the registry version it resolved.
                "model_version": "",
                "low_threshold": thresholds.low,
                "high_threshold": thresholds.high,
            },
            signature=build_signature(features, thresholds),
            input_example=features.head(3),
            pip_requirements=pinned_model_requirements(),
            metadata={
                "training_profile": profile,
                # Read by the server (docs/serve-your-own-model.md): each row is scored on
                # its own, so concurrent requests may share one predict call, and the risk
                # level is the output worth counting.
                "serving": {"rows_are_independent": True, "count_predictions_by": "risk_level"},
            },
        )
    return info
