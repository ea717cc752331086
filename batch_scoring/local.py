"""The local engine: every core of one machine, a chunk at a time per scoring process.

The command's own process, which loads the model to check it, scores chunks itself; with
more than one worker it also starts the others as spawned processes, each loading the
model from the run's local copy (a native thread pool started before a fork hangs its
children, XGBoost's OpenMP; spawned processes share nothing with the parent). A process
start and a model load cost seconds, as long as scoring a few hundred thousand rows: so
no chunk waits for a process that is still loading. The others start loading while the
parent loads (batch_scoring.run); the parent hands them a chunk only once one has loaded,
never more than two per loaded process at a time (bounded memory), and scores the chunk
itself otherwise; those still loading when the input runs out are stopped unused. Each
process writes its own parts. With more than one process, the native thread pools of
each (the parent's included) get an equal share of the cores (OMP_NUM_THREADS in the
others unless set; threadpoolctl in the parent, whose pools are already started): more
threads than cores slowed the demo model's predict down.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from app.errors import ModelLoadError
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
    by_parent: bool = True  # scored in the command's own process


@dataclass(frozen=True)
class ChunkJob:
    """What a process needs besides the chunk: the same for every chunk of a run."""

    staging: Path
    keep: tuple[str, ...]


_scorer: ChunkScorer | None = None
_load_failure: str | None = None


def use_model(model: ServedModel) -> None:
    """Score in this process with `model` (the parent)."""
    global _scorer
    _scorer = ChunkScorer(model, rule_engine(model))


def _start_worker(model_dir: str, threads: int) -> None:
    # A failing initializer breaks the pool without a word of why: the failure is kept and
    # raised by the readiness call and by any chunk this process is handed.
    global _load_failure
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        use_model(load_served_model(model_dir))
    except Exception as error:
        _load_failure = f"a worker process cannot load the model: {type(error).__name__}: {error}"


def _worker_ready() -> None:
    if _load_failure is not None:
        raise ModelLoadError(_load_failure)


def score_chunk(chunk: Chunk, input_name: str, job: ChunkJob) -> ChunkResult:
    """Score one chunk and write its parts; runs in any scoring process."""
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


def _score_in_worker(chunk: Chunk, input_name: str, job: ChunkJob) -> ChunkResult:
    _worker_ready()
    return replace(score_chunk(chunk, input_name, job), by_parent=False)


def start_workers(workers: int, model_dir: Path) -> WorkerPool | None:
    """The processes besides this one for `workers` scoring processes, loading the model
    from `model_dir` as soon as they start; None for one process."""
    if workers == 1:
        return None
    return WorkerPool(workers - 1, model_dir, threads=max(1, (os.cpu_count() or 1) // workers))


def score_locally(
    chunks: Iterator[tuple[Chunk, str]],
    job: ChunkJob,
    model: ServedModel,
    pool: WorkerPool | None,
    on_result: Callable[[ChunkResult], bool],
) -> None:
    """Score every chunk in this process and in `pool`'s; `on_result` is called in this
    process after each chunk and returns False to stop the run (no further chunk is
    started)."""
    use_model(model)
    if pool is None:
        for chunk, input_name in chunks:
            if not on_result(score_chunk(chunk, input_name, job)):
                return
        return
    with threadpool_limits(limits=pool.threads):
        for chunk, input_name in chunks:
            for result in pool.finished(block=False):
                if not on_result(result):
                    return
            if pool.can_take():
                pool.submit(chunk, input_name, job)
            elif not on_result(score_chunk(chunk, input_name, job)):
                return
        while pool.in_flight:
            for result in pool.finished(block=True):
                if not on_result(result):
                    return


class WorkerPool:
    """Spawned processes that score the chunks handed to them once they have loaded the
    model. On leaving, the chunks they hold are finished (their parts are complete) and the
    processes are stopped, loaded or not: an unused one is not waited for."""

    def __init__(self, processes: int, model_dir: Path, threads: int) -> None:
        self.threads = threads  # each process's share of the cores, this one's too
        before = set(multiprocessing.active_children())
        self._executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(model_dir), threads),
        )
        # One call per process, answered once it has loaded: the executor starts a
        # process per call while none is idle.
        self._loading = {self._executor.submit(_worker_ready) for _ in range(processes)}
        self._processes = set(multiprocessing.active_children()) - before
        self._loaded = 0
        self._chunks: set[Future[ChunkResult]] = set()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:  # a stopped run: the parts being written complete
                wait(self._chunks)
        finally:
            for process in self._processes:
                process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        return len(self._chunks)

    def can_take(self) -> bool:
        self._count_loaded()
        return len(self._chunks) < 2 * self._loaded

    def submit(self, chunk: Chunk, input_name: str, job: ChunkJob) -> None:
        self._chunks.add(self._executor.submit(_score_in_worker, chunk, input_name, job))

    def finished(self, *, block: bool) -> Iterator[ChunkResult]:
        """Chunks the processes have scored (waiting for one when `block`); raises what a
        process raised."""
        done, _ = wait(self._chunks, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            self._chunks.discard(future)
            yield future.result()

    def _count_loaded(self) -> None:
        for future in [future for future in self._loading if future.done()]:
            self._loading.discard(future)
            future.result()  # a process that cannot load the model fails the run
            self._loaded += 1
