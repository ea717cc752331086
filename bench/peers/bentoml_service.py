"""BentoML serving an MLflow model, as its docs show: run by `bentoml serve` in
.venv-peers/bentoml, never imported by the bench (it imports BentoML only).

`python bentoml_service.py NAME MODEL_DIR` imports the exported MLflow model into the model
store (BENTOML_HOME); `bentoml serve bentoml_service:MlflowModelService` then serves the
model named by BENCH_BENTO_MODEL with BENCH_WORKERS worker processes.
"""

from __future__ import annotations

import os
import sys

import bentoml
import pandas as pd

MODEL_TAG = os.environ.get("BENCH_BENTO_MODEL", "model:latest")
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


@bentoml.service(workers=WORKERS)
class MlflowModelService:
    def __init__(self) -> None:
        self.model = bentoml.mlflow.load_model(MODEL_TAG)

    # The argument's name is the JSON key of a request (bench.peers.formats.BENTOML_ARGUMENT).
    @bentoml.api
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.model.predict(frame))


if __name__ == "__main__":
    name, model_dir = sys.argv[1:3]
    bentoml.mlflow.import_model(name, model_dir)
