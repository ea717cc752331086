"""KServe's Python model server on an MLflow model, as KServe's custom-model docs build
one: a kserve.Model whose `load` is mlflow.pyfunc.load_model and whose `predict` takes a
V2 request as a DataFrame. Run in .venv-peers/kserve, never imported by the bench (it
imports KServe and MLflow only).

python kserve_server.py --model_name NAME --model_dir DIR --http_port P --workers N
"""

from __future__ import annotations

import argparse
from functools import partialmethod
from typing import Any

import mlflow.pyfunc
import pandas as pd
from kserve import InferRequest, InferResponse, Model, ModelServer, model_server
from kserve.protocol.rest.multiprocess.server import RESTServerProcess
from kserve.utils.utils import get_predict_response

# KServe's supervisor pings each worker every half second and kills one that does not answer
# within 5 s. A worker is a spawned process that imports MLflow and loads the model before
# it can answer: on a busy 2-core machine that takes longer, and the workers are killed and
# respawned forever. The bench gives them 60 s; nothing else changes.
WORKER_PING_TIMEOUT_S = 60.0
RESTServerProcess.is_alive = partialmethod(
    RESTServerProcess.is_alive, timeout=WORKER_PING_TIMEOUT_S
)


class MlflowPyfuncModel(Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.model: Any = None
        self.load()

    # With --workers above 1, KServe spawns the workers and pickles the registered models to
    # them. A loaded pyfunc model does not always survive pickling (a model logged as code is
    # a module MLflow imported under a generated name), so each worker loads its own copy
    # from the directory, as `mlflow models serve` workers do.
    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "model"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.load()

    def load(self) -> bool:
        self.model = mlflow.pyfunc.load_model(self.model_dir)
        self.ready = True
        return self.ready

    def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        result = pd.DataFrame(self.model.predict(payload.as_dataframe()))
        response: InferResponse = get_predict_response(payload, result, self.name)
        return response


parser = argparse.ArgumentParser(parents=[model_server.parser])
parser.add_argument("--model_dir", required=True, help="an MLflow model directory")

if __name__ == "__main__":
    # KServe's ModelServer reads its own flags (--http_port, --workers...) from sys.argv.
    args, _ = parser.parse_known_args()
    ModelServer().start([MlflowPyfuncModel(args.model_name, args.model_dir)])
