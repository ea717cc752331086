"""The in-process limit: pyfunc predict time on the bench's frames, with no HTTP at all.

Run as `python -m bench.inprocess MODEL_URI` with OMP_NUM_THREADS=1 and MLFLOW_TRACKING_URI
set, as in a server worker (OpenMP reads the variable once, when XGBoost loads, hence a
separate process). Prints {"<rows>": median seconds, ...} as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import mlflow

from bench.payloads import BODY_ROWS, make_frame


def time_predict(model_uri: str, repeats: int) -> dict[str, float]:
    model = mlflow.pyfunc.load_model(model_uri)
    medians = {}
    for rows in BODY_ROWS:
        frame = make_frame(rows)
        for _ in range(max(10, repeats // 10)):  # warm caches and lazy initialisation
            model.predict(frame)
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            model.predict(frame)
            samples.append(time.perf_counter() - started)
        medians[str(rows)] = statistics.median(samples)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("model_uri")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(time_predict(args.model_uri, args.repeats)))


if __name__ == "__main__":
    main()
