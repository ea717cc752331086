"""Where a run writes: a staging directory, committed with its manifest by one rename.

Parts are written under `.NAME.incomplete` beside the output; on success (or on a run that
fails past its share of rejects) the manifest is written into it last and the directory is
renamed to NAME. So a directory named NAME always holds a manifest, and a run killed at
any point leaves no NAME at all: readers trust only a directory with `_manifest.json`
whose status is "succeeded". A lock file beside it keeps two runs off one output; the
next run removes a killed run's staging directory and starts over.

Layout: `scores/part-*.parquet` (input_file, input_row, any kept columns, then the
model's output), `rejects/part-*.parquet` (input_file, input_row, reason), and
`_manifest.json`. Parquet readers skip names starting with `_` or `.`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch_scoring.answers import ModelFailedError
from batch_scoring.chunks import ScoredChunk

SCORES = "scores"
REJECTS = "rejects"
MANIFEST = "_manifest.json"
# What identifies a row in scores and rejects: its input file and its position there.
ROW_COLUMNS = ("input_file", "input_row")


class OutputError(Exception):
    """The output cannot be written: another run holds it, or it holds what this run must
    not replace."""


def part_name(file_index: int, chunk_index: int) -> str:
    return f"part-{file_index:05d}-{chunk_index:06d}.parquet"


def scores_table(
    scored: ScoredChunk, frame: pd.DataFrame, input_name: str, first_row: int, keep: list[str]
) -> pa.Table:
    rows = scored.scored_rows
    columns: dict[str, Any] = {
        "input_file": pa.array([input_name] * len(rows), pa.string()),
        "input_row": pa.array(rows + first_row, pa.int64()),
    }
    for name in keep:
        columns[name] = pa.Array.from_pandas(frame[name].iloc[rows])
    for name, values in scored.answers.items():
        if name in columns:
            raise ModelFailedError(
                f"the model's output has a column '{name}', a name the scores already use "
                f"({', '.join(columns)})"
            )
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise ModelFailedError(
                f"the model's output '{name}' mixes types no Parquet column can hold"
            ) from None
    return pa.table(columns)


def rejects_table(scored: ScoredChunk, input_name: str, first_row: int) -> pa.Table:
    positions = sorted(scored.rejected)
    return pa.table(
        {
            "input_file": pa.array([input_name] * len(positions), pa.string()),
            "input_row": pa.array([first_row + row for row in positions], pa.int64()),
            "reason": pa.array([scored.rejected[row] for row in positions], pa.string()),
        }
    )


class StagedOutput:
    def __init__(self, output: Path, *, overwrite: bool) -> None:
        self.output = output.absolute()
        self.staging = self.output.with_name(f".{self.output.name}.incomplete")
        self._lock_path = self.output.with_name(f".{self.output.name}.lock")
        self._overwrite = overwrite
        self._lock: int | None = None

    def __enter__(self) -> StagedOutput:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            self._lock = None
            raise OutputError(f"another run is writing {self.output}") from None
        try:
            self._check_replaceable()
            shutil.rmtree(self.staging, ignore_errors=True)  # a killed run's: start over
            (self.staging / SCORES).mkdir(parents=True)
            (self.staging / REJECTS).mkdir()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def _check_replaceable(self) -> None:
        if not self.output.exists():
            return
        manifest = self.output / MANIFEST
        if manifest.is_file():
            status = json.loads(manifest.read_text()).get("status")
            if status == "succeeded" and not self._overwrite:
                raise OutputError(
                    f"{self.output} holds a completed run; pass --overwrite to replace it"
                )
            return
        if self.output.is_dir() and not any(self.output.iterdir()):
            return
        raise OutputError(f"{self.output} exists and is not the output of a batch run")

    def parts(self, kind: str) -> list[str]:
        return sorted(path.name for path in (self.staging / kind).glob("*.parquet"))

    def commit(self, manifest: dict[str, Any]) -> None:
        """Unify the parts' schemas, write the manifest last, rename into place."""
        if manifest["status"] != "succeeded":
            shutil.rmtree(self.staging / SCORES)  # a failed run publishes no scores
        for kind in (SCORES, REJECTS):
            unify_part_schemas(self.staging / kind)
        manifest_path = self.staging / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        with manifest_path.open("rb") as handle:
            os.fsync(handle.fileno())
        replaced = self.output.with_name(f".{self.output.name}.replaced")
        if self.output.exists():
            shutil.rmtree(replaced, ignore_errors=True)
            self.output.rename(replaced)
        self.staging.rename(self.output)
        shutil.rmtree(replaced, ignore_errors=True)


def unify_part_schemas(directory: Path) -> None:
    """Give every part one schema: a chunk whose output field was all null, or all whole
    numbers, is cast to what the other chunks hold, so the parts read as one table."""
    if not directory.is_dir():
        return
    parts = sorted(directory.glob("*.parquet"))
    schemas = [pq.read_schema(part) for part in parts]
    if len({schema.to_string() for schema in schemas}) <= 1:
        return
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    for part, schema in zip(parts, schemas, strict=True):
        if schema.equals(unified):
            continue
        table = pq.read_table(part)
        columns = [
            table[field.name].cast(field.type)
            if field.name in table.column_names
            else pa.nulls(len(table), field.type)
            for field in unified
        ]
        rewritten = part.with_name(f".{part.name}.tmp")
        pq.write_table(pa.table(columns, schema=unified), rewritten)
        rewritten.replace(part)
