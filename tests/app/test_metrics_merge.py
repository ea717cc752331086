"""Merging the workers' metric files at the instant a worker creates one: prometheus_client
makes the file empty, then sizes it, so a read in between cannot unpack it. The scrape and
the pod's readiness read again a moment later rather than answer 500."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from app.observability.metrics import count_ready_workers, render_merged


def _created_a_moment_later(path: Path) -> threading.Thread:
    def finish() -> None:
        time.sleep(0.003)
        MmapedDict(str(path)).close()  # the library sizes the file and writes its header

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.mark.parametrize("read", [count_ready_workers, render_merged])
def test_a_metric_file_caught_while_created_is_read_again(
    read: Callable[[], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    created = tmp_path / "counter_4242.db"
    created.write_bytes(b"")  # as a worker's file is between its open and its sizing
    thread = _created_a_moment_later(created)
    try:
        assert read() in (0, b"")
    finally:
        thread.join()
