"""Quality gate for a candidate version: pass (exit 0) or fail with the reason (exit 3).

The candidate is loaded through pyfunc and must carry a signature and answer a smoke
prediction. It then scores a held-out dataset (--data, else the run's logged
holdout/holdout.csv) and fails when the metric is below --floor, or worse than the
current Production version, scored on the same rows, by more than --margin. The result
is written on the candidate as gate.* tags, which `promote --require-gate` and `status` read.
When the candidate carries business rules (registry_scripts.guardrails), the share of the
dataset's rows that break each is reported, and a critical output rule broken by any row
fails the gate.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel
from sklearn.metrics import average_precision_score, roc_auc_score

from app.guardrails.engine import RuleEngine
from app.guardrails.rules import OUTPUT, Guardrails, GuardrailsError, parse_rules
from model_fetch.guardrails import RULES_TAG
from registry_scripts._cli import add_name_argument, build_parser, run
from registry_scripts._client import is_connection_failure
from registry_scripts._errors import GateFailedError, UsageError
from registry_scripts._registry import (
    GATE_STATUS_TAG,
    audit_context,
    check_gate_parameters,
    check_version_number,
    get_production_version,
    get_ready_version,
    set_version_tags,
)

logger = logging.getLogger(__name__)

# Threshold-free metrics of a score where higher is better.
METRICS: dict[str, Callable[[Any, Any], float]] = {
    "auc": roc_auc_score,
    "average_precision": average_precision_score,
}
HOLDOUT_ARTIFACT = "holdout/holdout.csv"
SMOKE_ROWS = 5


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "auc"
    floor: float = 0.70
    margin: float = 0.02
    label_column: str = "defaulted"
    score_column: str = "score"

    def __post_init__(self) -> None:
        check_gate_parameters(self.floor, self.margin)


def read_dataset(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def load_version(client: MlflowClient, name: str, version: str, workdir: Path) -> PyFuncModel:
    """Download a version from the client's registry and load it; any failure fails the gate."""
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=str(workdir / f"v{version}"),
            tracking_uri=client.tracking_uri,
        )
        model: PyFuncModel = mlflow.pyfunc.load_model(local)
    except Exception as exc:  # a model that cannot load must never pass, whatever the cause
        if is_connection_failure(exc):
            raise
        raise GateFailedError(f"cannot load version {version}: {exc}") from exc
    return model


def download_holdout(client: MlflowClient, run_id: str | None, workdir: Path) -> Path:
    if run_id is None:
        raise GateFailedError("the version has no run, so no logged holdout; pass --data")
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=HOLDOUT_ARTIFACT,
            dst_path=str(workdir / "holdout"),
            tracking_uri=client.tracking_uri,
        )
    except (MlflowException, OSError) as exc:
        if is_connection_failure(exc):
            raise
        raise GateFailedError(
            f"run {run_id} has no {HOLDOUT_ARTIFACT} artifact ({exc}); pass --data"
        ) from exc
    return Path(local)


def predict_scores(
    model: PyFuncModel, features: pd.DataFrame, policy: GatePolicy, version: str
) -> np.ndarray:
    """One finite score per input row from `version`, or a GateFailedError saying why not."""
    try:
        output = model.predict(features)
    except Exception as exc:  # the model's own code: any failure fails the gate
        raise GateFailedError(
            f"version {version} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(output, pd.DataFrame):
        if policy.score_column not in output.columns:
            raise GateFailedError(
                f"version {version} prediction has no {policy.score_column!r} column"
            )
        output = output[policy.score_column]
    scores = np.asarray(output, dtype=float).reshape(-1)
    if len(scores) != len(features):
        raise GateFailedError(
            f"version {version} gave {len(scores)} scores for {len(features)} rows"
        )
    if not np.all(np.isfinite(scores)):
        raise GateFailedError(f"version {version} predicted NaN or infinite scores")
    return scores


def score_version(
    model: PyFuncModel, data: pd.DataFrame, policy: GatePolicy, version: str
) -> float:
    scores = predict_scores(model, data.drop(columns=[policy.label_column]), policy, version)
    return float(METRICS[policy.metric](data[policy.label_column], scores))


def check_candidate(
    model: PyFuncModel, data: pd.DataFrame, policy: GatePolicy, version: str
) -> float:
    """Signature, a smoke prediction, then the metric over all rows."""
    if model.metadata.signature is None:
        raise GateFailedError(f"version {version} has no signature")
    predict_scores(
        model, data.drop(columns=[policy.label_column]).head(SMOKE_ROWS), policy, version
    )
    return score_version(model, data, policy, version)


def rule_shares(
    model: PyFuncModel, features: pd.DataFrame, guardrails: Guardrails, version: str
) -> dict[str, float]:
    """Per rule, the share of the rows (inputs, and the model's answer to them) breaking it."""
    features = features.reset_index(drop=True)
    try:
        output = model.predict(features)
    except Exception as exc:  # the model's own code: any failure fails the gate
        raise GateFailedError(
            f"version {version} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc
    outputs: pd.DataFrame | dict[str, Any] = (
        output.reset_index(drop=True) if isinstance(output, pd.DataFrame) else {}
    )
    results = RuleEngine(guardrails).check(features, outputs)
    return {r.rule.id: round(r.violations / r.rows, 6) if r.rows else 0.0 for r in results}


def refuse_broken_critical_outputs(guardrails: Guardrails, shares: dict[str, float]) -> None:
    """A critical output rule broken on any evaluation row fails the gate."""
    broken = [
        rule.id
        for rule in guardrails.rules
        if rule.severity == "critical" and rule.side == OUTPUT and shares.get(rule.id, 0) > 0
    ]
    if broken:
        raise GateFailedError(
            "critical output rules broken on the evaluation rows: "
            + ", ".join(f"'{rule}' ({shares[rule]:.2%} of rows)" for rule in broken)
        )


def _attached_rules(text: str, version: str) -> Guardrails:
    try:
        return parse_rules(text)
    except GuardrailsError as exc:
        raise GateFailedError(f"version {version} carries unusable rules: {exc}") from exc


def evaluate_version(
    client: MlflowClient,
    name: str,
    version: str | int,
    policy: GatePolicy,
    data_path: Path | None = None,
) -> dict[str, Any]:
    """Run the gate on `version`, tag the result on it, raise GateFailedError on failure."""
    version = check_version_number(version)
    if policy.metric not in METRICS:
        raise UsageError(f"unknown metric {policy.metric!r}; choose from {sorted(METRICS)}")
    model_version = get_ready_version(client, name, version)
    production = get_production_version(client, name)
    baseline = production if production != version else None
    result: dict[str, Any] = {
        "name": name,
        "version": version,
        "metric": policy.metric,
        "floor": policy.floor,
        "margin": policy.margin,
        "baseline_version": baseline,
    }
    with tempfile.TemporaryDirectory(prefix="gate-") as tmp:
        workdir = Path(tmp)
        try:
            if data_path is None:
                data_path = download_holdout(client, model_version.run_id, workdir)
                result["data"] = f"runs:/{model_version.run_id}/{HOLDOUT_ARTIFACT}"
            else:
                result["data"] = str(data_path)
            data = read_dataset(data_path)
            result["rows"] = len(data)
            _check_dataset(data, policy)
            candidate = load_version(client, name, version, workdir)
            result["value"] = check_candidate(candidate, data, policy, version)
            rules_text = model_version.tags.get(RULES_TAG)
            if rules_text is not None:
                rules = _attached_rules(rules_text, version)
                features = data.drop(columns=[policy.label_column])
                result["guardrails"] = rule_shares(candidate, features, rules, version)
                refuse_broken_critical_outputs(rules, result["guardrails"])
            if baseline is not None:
                baseline_model = load_version(client, name, baseline, workdir)
                result["baseline_value"] = score_version(baseline_model, data, policy, baseline)
            _apply_thresholds(result, policy)
        except GateFailedError as failure:
            result.update(passed=False, reason=str(failure))
    _tag_result(client, name, version, result)
    if not result["passed"]:
        raise GateFailedError(
            f"{name} version {version} failed the gate: {result['reason']}", result
        )
    logger.info("%s version %s passed the gate: %s", name, version, result["reason"])
    return result


def _check_dataset(data: pd.DataFrame, policy: GatePolicy) -> None:
    if policy.label_column not in data.columns:
        raise UsageError(f"the dataset has no label column {policy.label_column!r}")
    if data[policy.label_column].nunique() < 2:
        raise UsageError("the dataset's labels have a single class: the metric is undefined")


def _apply_thresholds(result: dict[str, Any], policy: GatePolicy) -> None:
    value = result["value"]
    baseline_value = result.get("baseline_value")
    metric = policy.metric
    if math.isnan(value) or value < policy.floor:
        reason = f"{metric} {value:.4f} is below the floor {policy.floor:.4f}"
        result.update(passed=False, reason=reason)
    elif baseline_value is not None and baseline_value - value > policy.margin:
        reason = (
            f"{metric} {value:.4f} is {baseline_value - value:.4f} worse than Production "
            f"version {result['baseline_version']} ({baseline_value:.4f}), "
            f"more than the margin {policy.margin:.4f}"
        )
        result.update(passed=False, reason=reason)
    else:
        against = (
            f" and within {policy.margin:.4f} of Production ({baseline_value:.4f})"
            if baseline_value is not None
            else ""
        )
        reason = f"{metric} {value:.4f} is at least {policy.floor:.4f}{against}"
        result.update(passed=True, reason=reason)


def _tag_result(client: MlflowClient, name: str, version: str, result: dict[str, Any]) -> None:
    audit = audit_context()
    tags = {
        GATE_STATUS_TAG: "passed" if result["passed"] else "failed",
        "gate.reason": result["reason"],
        "gate.metric": result["metric"],
        "gate.floor": str(result["floor"]),
        "gate.margin": str(result["margin"]),
        "gate.checked_at": audit["at"],
        "gate.pipeline": audit["pipeline"],
    }
    for key in ("value", "baseline_value"):
        if key in result:
            tags[f"gate.{key}"] = f"{result[key]:.6f}"
    for key in ("baseline_version", "data", "rows"):
        if result.get(key) is not None:
            tags[f"gate.{key}"] = str(result[key])
    if result.get("guardrails"):
        tags["gate.guardrails"] = json.dumps(result["guardrails"], sort_keys=True)
    set_version_tags(client, name, version, tags)


def _validate(args: argparse.Namespace, client: MlflowClient) -> dict[str, Any]:
    policy = GatePolicy(
        metric=args.metric,
        floor=args.floor,
        margin=args.margin,
        label_column=args.label_column,
        score_column=args.score_column,
    )
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"--data {args.data} is not a file")
    return evaluate_version(client, args.name, args.version, policy, args.data)


def build_validate_parser() -> argparse.ArgumentParser:
    defaults = GatePolicy()
    parser = build_parser("validate", __doc__)
    add_name_argument(parser)
    parser.add_argument("--version", required=True, help="candidate version number")
    parser.add_argument("--data", type=Path, help="held-out CSV or Parquet with the label column")
    parser.add_argument("--metric", choices=sorted(METRICS), default=defaults.metric)
    parser.add_argument(
        "--floor",
        type=float,
        default=defaults.floor,
        help="minimum metric, from 0 to 1 (%(default)s)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=defaults.margin,
        help="largest drop allowed below Production on the same rows, at least 0 (%(default)s)",
    )
    parser.add_argument("--label-column", default=defaults.label_column)
    parser.add_argument("--score-column", default=defaults.score_column)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_validate_parser(), _validate, argv)


if __name__ == "__main__":
    sys.exit(main())
