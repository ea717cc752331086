"""Gunicorn configuration for bench.request_work: the production configuration of the
checkout on sys.path, plus cProfile in the worker's main thread, switched by SIGUSR2 (the
first signal starts counting, the next stops it and writes BENCH_PROFILE_OUT).

bench.request_work copies this file next to the run and puts it on PYTHONPATH, so another
checkout's `app.gunicorn_conf` is the one extended.
"""

from __future__ import annotations

import cProfile
import os
import signal
from types import FrameType
from typing import Any

import app.gunicorn_conf as production
from app.gunicorn_conf import *  # noqa: F403  (every setting and hook of the production config)

_running: list[cProfile.Profile] = []


def _switch(signum: int, frame: FrameType | None) -> None:
    if not _running:
        profile = cProfile.Profile()
        _running.append(profile)
        profile.enable()
        return
    profile = _running.pop()
    profile.disable()
    profile.dump_stats(os.environ["BENCH_PROFILE_OUT"])


def post_worker_init(worker: Any) -> None:
    hook = getattr(production, "post_worker_init", None)
    if hook is not None:
        hook(worker)
    signal.signal(signal.SIGUSR2, _switch)
