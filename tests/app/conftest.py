"""Fixtures of the app tests that start the real production command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.slow_model import save_slow_model
from tests.support.demo import RegisteredDemo
from tests.support.production import RunningServer, StartServer, start_server


@pytest.fixture
def start(registry: RegisteredDemo, tmp_path: Path) -> Iterator[StartServer]:
    """Start the production command on the test registry (`env`: its settings), serving a
    model whose predict sleeps `predict_seconds` when given; every server it started is
    killed after the test, whatever the test asserted."""
    started: list[RunningServer] = []

    def start_one(
        *,
        workdir: Path | None = None,
        workers: int = 2,
        predict_seconds: float | None = None,
        **env: str,
    ) -> RunningServer:
        workdir = workdir or tmp_path
        if predict_seconds is not None:
            env["MODEL_URI"] = str(save_slow_model(workdir / "slow", seconds=predict_seconds))
        server = start_server(registry, workdir, workers=workers, **env)
        started.append(server)
        return server

    yield start_one
    for server in started:
        server.kill()
