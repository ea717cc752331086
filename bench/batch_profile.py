"""Where the batch command's local engine spends its work, counted so machine noise cannot
move it: one worker's chunk path, and the parent of a run with two workers.

    .venv/bin/python -m bench.batch_profile                  # 100,000 demo rows
    .venv/bin/python -m bench.batch_profile --rows 200000 --model-dir DIR

1. The worker's chunk path (`batch_scoring.local.score_chunk` over every 10,000-row chunk,
   in this process, the model loaded as a worker loads it): CPU seconds per row unprofiled,
   then the Python and C function calls per row, split by stage (the innermost stage
   function on the stack owns a call), with each stage's CPU under that count (inflated by
   the counting in proportion to the calls, so read the calls first).
2. The parent of `run_batch` with two workers: its CPU seconds (all its threads), its
   wall time, and its main thread's calls counted by cProfile, the top functions by
   cumulative time.
Without `--model-dir` the demo model is trained into a temporary registry and exported.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

CHUNK_ROWS = 10_000


def _stage_codes() -> dict[CodeType, str]:
    import pyarrow.parquet as pq

    from app.protocol.frames import FrameBuilder
    from app.runtime.model import ServedModel
    from batch_scoring import answers, output, refusers

    functions: dict[str, list[Callable[..., Any]]] = {
        "signature check (refusers)": [
            refusers.SignatureRefuser.__call__,
            refusers.InputRulesRefuser.__call__,
        ],
        "columns as JSON values": [refusers.signature_columns],
        "model input frame": [FrameBuilder.__call__],
        "predict": [ServedModel.predict],
        "answers as /invocations answers them": [answers.as_answered, answers.frame_columns],
        "scores table": [output.scores_table, output.rejects_table],
        "Parquet write": [pq.write_table],
    }
    return {function.__code__: stage for stage, found in functions.items() for function in found}


class StageCounter:
    """Calls (Python and C) and CPU per stage; the innermost stage on the stack owns them."""

    def __init__(self, codes: dict[CodeType, str], c_stages: dict[str, str]) -> None:
        self.codes = codes
        self.c_stages = c_stages  # a C function's name -> its stage
        self.calls: Counter[str] = Counter()
        self.cpu: dict[str, float] = {}
        self.stack: list[tuple[Any, str, float]] = []

    def _enter(self, key: Any, stage: str) -> None:
        now = time.process_time()
        if self.stack:
            outer = self.stack[-1][1]
            self.cpu[outer] = self.cpu.get(outer, 0.0) + now - self.stack[-1][2]
            # the outer stage's clock restarts when this one returns
        self.stack.append((key, stage, now))

    def _leave(self) -> None:
        now = time.process_time()
        _, stage, since = self.stack.pop()
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now - since
        if self.stack:
            key, outer, _ = self.stack[-1]
            self.stack[-1] = (key, outer, now)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            stage = self.codes.get(frame.f_code)
            if stage is not None:
                self._enter(frame, stage)
            self.calls[self.stack[-1][1] if self.stack else "other"] += 1
        elif event == "return":
            if self.stack and self.stack[-1][0] is frame:
                self._leave()
        elif event == "c_call":
            name = getattr(arg, "__name__", "")
            stage = self.c_stages.get(name)
            if stage is not None:
                self._enter(arg, stage)
            self.calls[self.stack[-1][1] if self.stack else "other"] += 1
        elif event in ("c_return", "c_exception") and self.stack and self.stack[-1][0] is arg:
            self._leave()


def profile_worker(model_dir: Path, source: Path, scratch: Path) -> None:
    from app.runtime.model import load_served_model
    from batch_scoring.inputs import find_inputs, read_chunks
    from batch_scoring.local import ChunkJob, score_chunk, use_model
    from batch_scoring.output import REJECTS, SCORES

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each of two workers on two cores
    use_model(load_served_model(str(model_dir)))
    inputs = find_inputs(source)
    chunks = list(read_chunks(inputs, CHUNK_ROWS))
    rows = sum(len(chunk.data) for chunk in chunks)

    def score_all(run: int) -> None:
        job = ChunkJob(scratch / f"worker-{run}", ())
        (job.staging / SCORES).mkdir(parents=True)
        (job.staging / REJECTS).mkdir()
        for chunk in chunks:
            score_chunk(chunk, inputs[chunk.file_index].name, job)

    score_all(0)  # warm-up: first-call imports and caches
    started = time.process_time()
    score_all(1)
    cpu = time.process_time() - started
    counter = StageCounter(_stage_codes(), {"to_pandas": "Arrow batch to pandas"})
    sys.setprofile(counter)
    try:
        score_all(2)
    finally:
        sys.setprofile(None)
    calls = sum(counter.calls.values())
    counted_cpu = sum(counter.cpu.values())
    print(f"\nworker chunk path, {rows:,} rows in {len(chunks)} chunks of {CHUNK_ROWS:,}")
    print(f"  CPU unprofiled: {cpu:.3f} s, {1e6 * cpu / rows:.2f} µs/row")
    print(f"  function calls: {calls:,}, {calls / rows:.1f} per row")
    print(f"  {'stage':<40} {'calls/row':>10} {'share of calls':>15} {'CPU share (counted)':>20}")
    for stage, count in counter.calls.most_common():
        share = counter.cpu.get(stage, 0.0) / counted_cpu if counted_cpu else 0.0
        print(f"  {stage:<40} {count / rows:>10.2f} {count / calls:>15.1%} {share:>20.1%}")


def profile_parent(model_dir: Path, source: Path, scratch: Path) -> None:
    from batch_scoring.run import BatchOptions, run_batch

    options = BatchOptions(
        model_uri=str(model_dir), input=source, output=scratch / "parent-run", workers=2
    )
    profiler = cProfile.Profile()
    wall = time.perf_counter()
    cpu = time.process_time()
    profiler.enable()
    manifest = run_batch(options, on_progress=None)
    profiler.disable()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    rows = manifest["rows"]["in"]
    stats = pstats.Stats(profiler, stream=(text := io.StringIO()))
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(f"\nparent of a 2-worker run, {rows:,} rows: wall {wall:.2f} s, CPU {cpu:.2f} s")
    print(f"  main-thread function calls: {calls:,}, {calls / rows:.2f} per row")
    stats.sort_stats("cumulative").print_stats(25)
    print(text.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model-dir", type=Path, help="a local model directory (else the demo's)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="batch-profile-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model_dir
        if model_dir is None:
            from bench.registry import create_demo_registry
            from registry_scripts.export import export_model

            _, model_uri = create_demo_registry(scratch / "registry")
            model_dir = scratch / "model"
            export_model(model_uri, model_dir)
        from registry_scripts.demo_data import LABEL, make_credit_dataset

        source = scratch / "applicants.parquet"
        make_credit_dataset(n_rows=args.rows, seed=5).drop(columns=[LABEL]).to_parquet(source)
        print(f"load average {os.getloadavg()}")
        profile_worker(model_dir, source, scratch)
        profile_parent(model_dir, source, scratch)
        print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
