"""Throwaway SQLite registries: the full demo model, or identity models of several widths."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import mlflow
from mlflow.models import infer_signature

from bench.payloads import make_wide_frame
from registry_scripts._promotion import promote_version
from registry_scripts._registration import register_model_version
from registry_scripts.train import EXPERIMENT, MODEL_NAME, train_demo_model

IDENTITY_MODEL_CODE = Path(__file__).with_name("identity_model.py")
IDENTITY_EXPERIMENT = "serving-overhead-bench"


def _open_registry(root: Path, experiment: str) -> mlflow.MlflowClient:
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    # Artifacts next to the database, not in ./mlruns of the working directory.
    client.create_experiment(experiment, artifact_location=str(root / "artifacts"))
    return client


def create_demo_registry(root: Path) -> tuple[str, str]:
    """Train the demo model into a registry under `root`; return (tracking URI, model URI).

    The model URI names the concrete version, so both servers load exactly the same model.
    """
    client = _open_registry(root, EXPERIMENT)
    result = train_demo_model()
    version = register_model_version(client, result.model_uri, MODEL_NAME, run_id=result.run_id)
    promote_version(client, MODEL_NAME, version.version)
    return mlflow.get_tracking_uri(), f"models:/{MODEL_NAME}/{version.version}"


def create_identity_registry(root: Path, widths: Iterable[int]) -> tuple[str, dict[int, str]]:
    """Log and register one identity model per width (double columns x0...); return the
    tracking URI and each width's concrete model URI.

    Each has a signature and an input example, as a user's model would; none declares
    `rows_are_independent`, so our server predicts each request on its own.
    """
    client = _open_registry(root, IDENTITY_EXPERIMENT)
    mlflow.set_experiment(IDENTITY_EXPERIMENT)
    uris = {}
    for width in widths:
        example = make_wide_frame(width, 2)
        name = f"identity-{width}-columns"
        with mlflow.start_run(run_name=name):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(IDENTITY_MODEL_CODE),
                signature=infer_signature(example, example),
                input_example=example,
                # Nothing to infer: the model needs MLflow alone.
                pip_requirements=[f"mlflow=={mlflow.__version__}"],
            )
        version = register_model_version(client, info.model_uri, name, run_id=info.run_id)
        uris[width] = f"models:/{name}/{version.version}"
    return mlflow.get_tracking_uri(), uris
