"""The local engine: every core of one machine, a chunk at a time per worker process.

The parent reads the input in chunks and hands each to a pool of worker processes, never
more than two per worker at a time (bounded memory); each worker scores its chunk and
writes its parts itself. Workers are spawned, not forked, and each loads the model from
the run's local copy: a native thread pool started before a fork hangs its children
(XGBoost's OpenMP), and spawned workers share nothing with the parent. Each worker's
native thread pools get an equal share of the cores (OMP_NUM_THREADS, unless set). With
one worker, chunks are scored in the parent's process, with the model it loaded.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.runtime.model import ServedModel, load_served_model
from batch_scoring.chunks import ChunkScorer
from batch_scoring.guardrails import rule_engine
from batch_scoring.inputs import Chunk, InputError
from batch_scoring.output import REJECTS, SCORES, part_name, rejects_table, scores_table


@dataclass(frozen=True)
class ChunkResult:
    rows: int
    scored: int
    rejected: int


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs besides the chunk: the same for every chunk of a run."""

    staging: Path
    keep: tuple[str, ...]


_scorer: ChunkScorer | None = None


def use_model(model: ServedModel) -> None:
    """Score in this process with `model` (the parent, with one worker)."""
    global _scorer
    _scorer = ChunkScorer(model, rule_engine(model))


def _start_worker(model_dir: str, threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    use_model(load_served_model(model_dir))


def score_chunk(chunk: Chunk, input_name: str, job: ChunkJob) -> ChunkResult:
    """Score one chunk and write its parts; runs in a worker (or the parent)."""
    assert _scorer is not None, "use_model() or the worker initializer sets the scorer"
    frame = chunk.data.to_pandas() if isinstance(chunk.data, pa.RecordBatch) else chunk.data
    missing = [name for name in job.keep if name not in frame.columns]
    if missing:
        raise InputError(f"{input_name} has no column(s) to keep: {', '.join(missing)}")
    scored = _scorer.score(frame)
    name = part_name(chunk.file_index, chunk.index)
    if len(scored.scored_rows):
        table = scores_table(scored, frame, input_name, chunk.first_row, list(job.keep))
        pq.write_table(table, job.staging / SCORES / name)
    if scored.rejected:
        pq.write_table(
            rejects_table(scored, input_name, chunk.first_row), job.staging / REJECTS / name
        )
    return ChunkResult(len(frame), len(scored.scored_rows), len(scored.rejected))


def score_locally(
    chunks: Iterator[tuple[Chunk, str]],
    job: ChunkJob,
    model: ServedModel,
    model_dir: Path,
    workers: int,
    on_result: Callable[[ChunkResult], bool],
) -> None:
    """Score every chunk; `on_result` is called in the parent after each and returns False
    to stop the run (no further chunk is started)."""
    if workers == 1:
        use_model(model)
        for chunk, input_name in chunks:
            if not on_result(score_chunk(chunk, input_name, job)):
                return
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(str(model_dir), threads),
    ) as pool:
        pending: set[Future[ChunkResult]] = set()
        try:
            for chunk, input_name in chunks:
                pending.add(pool.submit(score_chunk, chunk, input_name, job))
                while len(pending) >= 2 * workers:
                    if not _collect(pending, on_result):
                        return
            while pending:
                if not _collect(pending, on_result):
                    return
        finally:
            for future in pending:
                future.cancel()


def _collect(pending: set[Future[ChunkResult]], on_result: Callable[[ChunkResult], bool]) -> bool:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    carry_on = True
    for future in done:
        pending.discard(future)
        carry_on = on_result(future.result()) and carry_on
    return carry_on
