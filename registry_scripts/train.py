"""Train the demo credit-risk model, log it wrapped for serving, optionally register and promote.

python -m registry_scripts.train [--register] [--promote] [--if-missing]

A registered version gets the demo's business rules (model_wrapper/guardrails.yaml).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier

from model_wrapper.packaging import DEMO_RULES_FILE, log_scoring_model
from registry_scripts._cli import build_parser, run
from registry_scripts._client import is_connection_failure
from registry_scripts._promotion import promote_version
from registry_scripts._registration import register_model_version
from registry_scripts._registry import get_production_version
from registry_scripts.demo_data import (
    CATEGORICAL_FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    make_credit_dataset,
)
from registry_scripts.guardrails import attach_rules

MODEL_NAME = "credit-risk-scoring"
EXPERIMENT = "credit-risk-scoring"
HOLDOUT_ARTIFACT_DIR = "holdout"
HOLDOUT_FILE = "holdout.csv"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    auc: float
    holdout_path: str


def build_pipeline(n_estimators: int, seed: int) -> Pipeline:
    """One-hot encode the categoricals, pass numbers through, then gradient-boosted trees."""
    preprocess = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
        ]
    )
    classifier = XGBClassifier(
        n_estimators=n_estimators,
        max_depth=6,
        learning_rate=0.05,
        subsample=0.9,
        tree_method="hist",
        random_state=seed,
        eval_metric="auc",
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def train_demo_model(
    *,
    n_rows: int = 6000,
    seed: int = 7,
    shuffle_labels: bool = False,
    n_estimators: int = 200,
) -> TrainResult:
    """Fit on a synthetic dataset, score a held-out split and log the wrapped model.

    `shuffle_labels` trains on permuted labels: a deliberately useless model for gate tests.
    """
    data = make_credit_dataset(n_rows=n_rows, seed=seed)
    features = data.drop(columns=[LABEL])
    train_x, test_x, train_y, test_y = train_test_split(
        features, data[LABEL], test_size=0.25, random_state=seed, stratify=data[LABEL]
    )
    if shuffle_labels:
        train_y = train_y.sample(frac=1.0, random_state=seed).set_axis(train_y.index)

    pipeline = build_pipeline(n_estimators, seed).fit(train_x, train_y)
    auc = float(roc_auc_score(test_y, pipeline.predict_proba(test_x)[:, 1]))

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run() as run:
        mlflow.log_params(
            {
                "n_rows": n_rows,
                "seed": seed,
                "n_estimators": n_estimators,
                "shuffle_labels": shuffle_labels,
            }
        )
        mlflow.log_metrics({"auc": auc, "default_rate": float(np.mean(data[LABEL]))})
        with tempfile.TemporaryDirectory() as workdir:
            holdout = Path(workdir) / HOLDOUT_FILE
            test_x.assign(**{LABEL: test_y}).to_csv(holdout, index=False)
            mlflow.log_artifact(str(holdout), artifact_path=HOLDOUT_ARTIFACT_DIR)
        info = log_scoring_model(pipeline, train_x, model_name=MODEL_NAME)
    logger.info("trained run %s: held-out AUC %.4f", run.info.run_id, auc)
    return TrainResult(
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        auc=auc,
        holdout_path=f"{HOLDOUT_ARTIFACT_DIR}/{HOLDOUT_FILE}",
    )


def has_production_version(client: MlflowClient, name: str) -> bool:
    """True when `name` has a Production version; a registry that does not answer raises.

    Only "no such model" means missing: an unreachable registry is never taken for an
    empty one (that would train and register a duplicate).
    """
    try:
        return get_production_version(client, name) is not None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and not is_connection_failure(exc):
            return False
        raise


def _train(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    if args.if_missing and has_production_version(client, MODEL_NAME):
        logger.info("%s already has a Production version; nothing to train", MODEL_NAME)
        return {"trained": False, "reason": "production version exists"}
    result = train_demo_model(n_rows=args.rows, seed=args.seed, n_estimators=args.trees)
    output: dict[str, Any] = {"trained": True, **asdict(result)}
    if args.register or args.promote:
        version = register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
        output["version"] = str(version.version)
        rules = DEMO_RULES_FILE.read_text(encoding="utf-8")
        output["guardrails"] = attach_rules(client, MODEL_NAME, str(version.version), rules)
        if args.promote:
            promote_version(client, MODEL_NAME, version.version)
            output["promoted"] = True
    return output


def build_train_parser() -> argparse.ArgumentParser:
    parser = build_parser("train", __doc__)
    parser.add_argument("--register", action="store_true", help=f"register as {MODEL_NAME}")
    parser.add_argument(
        "--promote", action="store_true", help="promote to Production (implies --register)"
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when a Production version already exists",
    )
    parser.add_argument("--rows", type=int, default=6000, help="synthetic rows to generate")
    parser.add_argument("--trees", type=int, default=200, help="boosting rounds")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_train_parser(), _train, argv)


if __name__ == "__main__":
    sys.exit(main())
