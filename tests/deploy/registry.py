"""Build a throwaway SQLite registry holding two versions of the demo model.

Run as `python -m tests.deploy.registry DIR` from the project root: training sets MLflow's
process-wide tracking URI, so it runs in its own process, away from the test session's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VERSIONS = 2


def make_registry(root: Path) -> str:
    """Train, log and register VERSIONS small demo models under root; return the tracking URI."""
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    import mlflow

    from registry_scripts._registration import register_model_version
    from registry_scripts.train import EXPERIMENT, MODEL_NAME, train_demo_model

    client = mlflow.MlflowClient()
    # Artifacts beside the database, so one directory holds the whole registry.
    client.create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    for seed in range(1, VERSIONS + 1):
        result = train_demo_model(n_rows=1000, seed=seed, n_estimators=20)
        register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
    return tracking_uri


if __name__ == "__main__":
    print(make_registry(Path(sys.argv[1]).resolve()))
