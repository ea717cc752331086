"""A throwaway SQLite registry holding the full demo model, registered and promoted."""

from __future__ import annotations

from pathlib import Path

import mlflow

from registry_scripts.promote import promote_version
from registry_scripts.register import register_model_version
from registry_scripts.train import EXPERIMENT, MODEL_NAME, train_demo_model


def create_demo_registry(root: Path) -> tuple[str, str]:
    """Train the demo model into a registry under `root`; return (tracking URI, model URI).

    The model URI names the concrete version, so both servers load exactly the same model.
    """
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    # Artifacts next to the database, not in ./mlruns of the working directory.
    client.create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    result = train_demo_model()
    version = register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
    promote_version(client, MODEL_NAME, version.version)
    return tracking_uri, f"models:/{MODEL_NAME}/{version.version}"
