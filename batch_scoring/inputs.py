"""The input files of a run, described for the manifest, and read in chunks of rows.

Parquet is read a batch of rows at a time (pyarrow's `iter_batches`), CSV a chunk at a
time (pandas' `read_csv`, as the server reads a CSV body), so memory is bounded by the
chunk size, not the file. A directory is read recursively, in name order; names starting
with `_` or `.` (Spark's `_SUCCESS`, checksums) are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow.parquet as pq

FORMATS: dict[str, Literal["parquet", "csv"]] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
_HASH_BLOCK = 1 << 20


class InputError(Exception):
    """The input cannot be read as a table (no files, an unknown format, a changed file)."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # relative to --input: what scores and rejects name as `input_file`
    format: Literal["parquet", "csv"]
    size: int
    mtime_ns: int
    sha256: str
    rows: int | None  # from a Parquet footer; a CSV's are counted as it is read

    def manifest_entry(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "bytes": self.size, "sha256": self.sha256}

    def unchanged(self) -> bool:
        stat = self.path.stat()
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


@dataclass(frozen=True)
class Chunk:
    """Rows `first_row`.. of one file (0-based positions in that file)."""

    file_index: int
    index: int  # the chunk's position in its file
    first_row: int
    data: Any  # a pyarrow RecordBatch (Parquet) or a pandas DataFrame (CSV)


def find_inputs(root: Path) -> list[InputFile]:
    if root.is_file():
        paths = [root]
    elif root.is_dir():
        paths = sorted(
            path
            for path in root.rglob("*")
            if path.is_file()
            and not any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)
        )
    else:
        raise InputError(f"no such input file or directory: {root}")
    files = [_describe(path, root) for path in paths if path.suffix.lower() in FORMATS]
    if root.is_file() and not files:
        raise InputError(f"input {root.name!r} is neither Parquet (.parquet, .pq) nor CSV (.csv)")
    if not files:
        raise InputError(f"no Parquet (.parquet, .pq) or CSV (.csv) files under {root}")
    return files


def _describe(path: Path, root: Path) -> InputFile:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    file_format = FORMATS[path.suffix.lower()]
    rows = None
    if file_format == "parquet":
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as error:  # pyarrow raises many unrelated types for a bad file
            raise InputError(f"{path.name} is not a Parquet file: {type(error).__name__}") from None
    return InputFile(
        path=path,
        name=path.name if path == root else str(path.relative_to(root)),
        format=file_format,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=digest.hexdigest(),
        rows=rows,
    )


def read_chunks(files: list[InputFile], chunk_rows: int) -> Iterator[Chunk]:
    for file_index, source in enumerate(files):
        first_row = 0
        for index, data in enumerate(_read(source, chunk_rows)):
            if len(data) == 0:
                continue
            yield Chunk(file_index, index, first_row, data)
            first_row += len(data)


def _read(source: InputFile, chunk_rows: int) -> Iterator[Any]:
    if source.format == "parquet":
        yield from pq.ParquetFile(source.path).iter_batches(batch_size=chunk_rows)
        return
    try:
        with pd.read_csv(source.path, chunksize=chunk_rows) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        return  # a CSV without even a header holds no rows
    except pd.errors.ParserError as error:
        raise InputError(f"{source.name} cannot be parsed as CSV: {error}") from None
