"""A run from start to manifest: resolve the model to one version, copy it, score, commit.

The model URI (a stage, an alias, `latest` or a version) is resolved once, at start, as
the server resolves it (model_fetch.origin), and that version is downloaded into a local
directory with its registry origin (registry_scripts.export): every worker and every
Spark executor loads that copy, so a stage or alias that moves during the run changes
nothing, and the registry is not asked again.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from app.errors import ModelLoadError
from app.runtime.model import ServedModel, load_served_model
from batch_scoring.guardrails import rule_engine
from batch_scoring.inputs import Chunk, InputError, InputFile, find_inputs, read_chunks
from batch_scoring.local import ChunkJob, ChunkResult, score_locally, start_workers
from batch_scoring.output import REJECTS, SCORES, StagedOutput
from model_fetch.origin import resolve_origin
from registry_scripts.export import export_model

logger = logging.getLogger(__name__)

Engine = Literal["local", "spark"]


@dataclass(frozen=True)
class BatchOptions:
    model_uri: str
    input: Path
    output: Path
    engine: Engine = "local"
    # The share of input rows that may be rejected before the run fails; none by default.
    max_reject_share: float = 0.0
    chunk_rows: int = 10_000
    workers: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    spark_master: str = "local[*]"
    keep: tuple[str, ...] = ()
    overwrite: bool = False


@dataclass
class Progress:
    """Counts so far, handed to the progress callback after each chunk."""

    rows_total: int | None
    chunks: int = 0
    chunks_in_parent: int = 0  # scored in the command's own process (local engine)
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, result: ChunkResult) -> None:
        self.chunks += 1
        self.chunks_in_parent += result.by_parent
        self.rows += result.rows
        self.scored += result.scored
        self.rejected += result.rejected

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = (
            f"/{self.rows_total} ({100 * self.rows / self.rows_total:.0f}%)"
            if (self.rows_total)
            else ""
        )
        return (
            f"batch: {self.chunks} chunks, {self.rows}{share} rows, {self.scored} scored, "
            f"{self.rejected} rejected, {self.rows / elapsed:.0f} rows/s"
        )


def run_batch(
    options: BatchOptions, on_progress: Callable[[Progress], None] | None = None
) -> dict[str, Any]:
    """Score the input and commit the output; the manifest (its status says whether the
    run succeeded). Raises InputError, ModelLoadError, OutputError, ModelFailedError."""
    started_at = _now()
    inputs = find_inputs(options.input)
    total = None if any(f.rows is None for f in inputs) else sum(f.rows or 0 for f in inputs)
    with (
        StagedOutput(options.output, overwrite=options.overwrite) as output,
        tempfile.TemporaryDirectory(prefix="batch-model-") as scratch,
        ExitStack() as workers,
    ):
        model_dir = _copy(options.model_uri, Path(scratch))
        pool = None
        if options.engine == "local":
            # The other processes load the model while this one loads and checks it.
            pool = start_workers(_workers(options, total), model_dir)
            if pool is not None:
                workers.enter_context(pool)
        model = load_served_model(str(model_dir))
        logger.info("scoring with %s (%s)", model.description.resolved_uri, options.model_uri)
        _check_model(model)
        progress = Progress(total)
        allowed = None if total is None else int(options.max_reject_share * total)
        if options.engine == "spark":
            from batch_scoring.spark import score_with_spark

            counts = score_with_spark(model, model_dir, inputs, output.staging, options)
            progress.add(counts)
        else:

            def on_result(result: ChunkResult) -> bool:
                progress.add(result)
                print(progress.line(), file=sys.stderr, flush=True)
                if on_progress is not None:
                    on_progress(progress)
                return allowed is None or progress.rejected <= allowed

            job = ChunkJob(output.staging, options.keep)
            chunks = _named(read_chunks(inputs, options.chunk_rows), inputs)
            score_locally(chunks, job, model, pool, on_result)
        workers.close()
        changed = [source.name for source in inputs if not source.unchanged()]
        if changed:
            raise InputError(f"input changed while it was scored: {', '.join(changed)}")
        manifest = _manifest(options, model, inputs, progress, output, started_at)
        output.commit(manifest)
    return manifest


def _manifest(
    options: BatchOptions,
    model: ServedModel,
    inputs: list[InputFile],
    progress: Progress,
    output: StagedOutput,
    started_at: str,
) -> dict[str, Any]:
    """What the run scored, with what, and whether it succeeded."""
    total = progress.rows_total
    stopped = 0 if total is None else total - progress.rows
    share = progress.rejected / progress.rows if progress.rows else 0.0
    failure = None
    if stopped or share > options.max_reject_share:
        failure = (
            f"{progress.rejected} of {progress.rows} rows read were rejected "
            f"({share:.4%}), more than --max-reject-share {options.max_reject_share:.4%}"
            + (f"; stopped before the last {stopped} rows" if stopped else "")
        )
    return {
        "status": "failed" if failure else "succeeded",
        "failure": failure,
        "model": {
            "requested_uri": options.model_uri,
            "name": model.description.name,
            "version": model.description.version,
            "resolved_uri": model.description.resolved_uri,
            "run_id": model.description.run_id,
        },
        "engine": _engine(options, total, progress),
        "inputs": [source.manifest_entry() for source in inputs],
        "rows": {"in": progress.rows, "scored": progress.scored, "rejected": progress.rejected},
        "reject_share": share,
        "max_reject_share": options.max_reject_share,
        "kept_columns": list(options.keep),
        "parts": {
            SCORES: [] if failure else output.parts(SCORES),
            REJECTS: output.parts(REJECTS),
        },
        "packages": model.description.packages,
        "started_at": started_at,
        "ended_at": _now(),
    }


def _copy(model_uri: str, scratch: Path) -> Path:
    """The directory of the version `model_uri` names now: copied under `scratch`, or the
    local model directory it is."""
    model_dir = Path(model_uri)
    if not model_dir.is_dir():
        model_dir = scratch / "model"
        try:
            export_model(resolve_origin(model_uri).resolved_uri, model_dir)
        except Exception as error:
            raise ModelLoadError(
                f"cannot resolve or download model '{model_uri}': {type(error).__name__}: {error}"
            ) from error
    return model_dir


def _check_model(model: ServedModel) -> None:
    rule_engine(model)  # rules that do not fit the signature stop the run here
    if model.contract.from_type_hints:
        raise ModelLoadError(
            "the model's signature comes from its type hints; batch scoring takes models "
            "whose input is a table (a signature of columns, or none)"
        )
    schema = model.input_schema
    if schema is not None and schema.is_tensor_spec():
        raise ModelLoadError(
            "the model's input is a tensor; batch scoring takes models whose input is a "
            "table (a signature of columns, or none)"
        )


def _named(chunks: Iterator[Chunk], inputs: list[InputFile]) -> Iterator[tuple[Chunk, str]]:
    for chunk in chunks:
        yield chunk, inputs[chunk.file_index].name


def _workers(options: BatchOptions, total: int | None) -> int:
    """Scoring processes, the command's own included: no more than chunks, as each other
    one costs a process start and a model load."""
    if total is None:
        return max(1, options.workers)
    return max(1, min(options.workers, -(-total // options.chunk_rows)))


def _engine(options: BatchOptions, total: int | None, progress: Progress) -> dict[str, Any]:
    if options.engine == "spark":
        return {"name": "spark", "master": options.spark_master}
    return {
        "name": "local",
        "workers": _workers(options, total),
        "chunk_rows": options.chunk_rows,
        "chunks": progress.chunks,
        "chunks_in_parent": progress.chunks_in_parent,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
