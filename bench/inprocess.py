"""The in-process limit: pyfunc predict time on the bench's frames, with no HTTP at all.

The model lives in a child process (`python -m bench.inprocess MODEL_URI [--rows N ...]
[--columns N]`) started with OMP_NUM_THREADS=1, as in a server worker: OpenMP reads the
variable once, when XGBoost loads, and the bench process must not change it for the
servers it starts. The child
measures once per line read on stdin, so the bench can measure in every round, under the
same machine load as the servers' cells.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

import pandas as pd

from bench.payloads import BODY_ROWS, make_frame, make_wide_frame

# By default, timing stops on a frame after this long (past MIN_SAMPLES calls).
FRAME_BUDGET_S = 5.0
MIN_SAMPLES = 3


class InProcessTimer:
    """The child process holding the model; `measure` asks it for one measurement."""

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        scratch: Path,
        cwd: Path,
        *,
        columns: int | None = None,
        rows: tuple[int, ...] = BODY_ROWS,
    ) -> None:
        """Frames: the demo applicants, or with `columns` the bench's wide frames of doubles
        (bench.payloads.make_wide_frame), `rows` rows each."""
        frames = ["--rows", *map(str, rows)]
        if columns is not None:
            frames += ["--columns", str(columns)]
        env = os.environ | {
            "OMP_NUM_THREADS": "1",
            "MLFLOW_TRACKING_URI": tracking_uri,
            "TMPDIR": str(scratch),
        }
        self._process: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "bench.inprocess", model_uri, *frames],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the bench, which closes this child
        )
        # Both are pipes, as asked above; Popen types them as optional.
        self._requests = cast(IO[str], self._process.stdin)
        self._answers = cast(IO[str], self._process.stdout)

    def measure(
        self, repeats: int, budget_s: float = FRAME_BUDGET_S
    ) -> dict[str, dict[int, float]]:
        """Median seconds of `repeats` predict calls per body size (fewer after `budget_s`
        per frame): "wall" and "cpu" of pyfunc predict, "served_wall" of the predict our
        server calls."""
        self._requests.write(f"{repeats} {budget_s}\n")
        self._requests.flush()
        line = self._answers.readline()
        if not line:
            raise RuntimeError(f"the in-process timer exited with {self._process.wait()}")
        raw: dict[str, dict[str, float]] = json.loads(line)
        return {kind: {int(rows): s for rows, s in values.items()} for kind, values in raw.items()}

    def __enter__(self) -> InProcessTimer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._requests.close()  # end of input: the child returns
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _time_predict(
    model: Any, repeats: int, budget_s: float, frames: dict[int, pd.DataFrame]
) -> dict[str, dict[str, float]]:
    """Per frame: pyfunc predict (wall and CPU), and the predict as our server calls it
    (`ServedModel.predict`, without MLflow's second schema pass), alternated call by call.

    At most `repeats` calls, fewer on a frame where they would take over `budget_s`.
    """
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    served_wall: dict[str, float] = {}
    for rows, frame in frames.items():
        deadline = time.monotonic() + budget_s / 4
        for _ in range(max(10, repeats // 10)):  # warm caches and lazy initialisation
            model.pyfunc_model.predict(frame)
            model.predict(frame)
            if time.monotonic() > deadline:
                break
        wall_samples, cpu_samples, served_samples = [], [], []
        deadline = time.monotonic() + budget_s
        for index in range(repeats):
            if index >= MIN_SAMPLES and time.monotonic() > deadline:
                break
            wall_started, cpu_started = time.perf_counter(), time.thread_time()
            model.pyfunc_model.predict(frame)
            wall_samples.append(time.perf_counter() - wall_started)
            cpu_samples.append(time.thread_time() - cpu_started)
            served_started = time.perf_counter()
            model.predict(frame)
            served_samples.append(time.perf_counter() - served_started)
        wall[str(rows)] = statistics.median(wall_samples)
        cpu[str(rows)] = statistics.median(cpu_samples)
        served_wall[str(rows)] = statistics.median(served_samples)
    return {"wall": wall, "cpu": cpu, "served_wall": served_wall}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("model_uri")
    parser.add_argument("--rows", type=int, nargs="+", default=list(BODY_ROWS))
    parser.add_argument("--columns", type=int, help="wide frames of doubles, not the demo's")
    args = parser.parse_args()
    if args.columns is None:
        frames = {rows: make_frame(rows) for rows in args.rows}
    else:
        frames = {rows: make_wide_frame(args.columns, rows) for rows in args.rows}
    # Only in the child, where OMP_NUM_THREADS is already 1.
    from app.runtime.model import load_served_model

    model = load_served_model(args.model_uri)
    for line in sys.stdin:
        repeats, budget_s = line.split()
        print(json.dumps(_time_predict(model, int(repeats), float(budget_s), frames)), flush=True)


if __name__ == "__main__":
    main()
