"""Gunicorn configuration of the production command:

    gunicorn --config python:app.gunicorn_conf "app.main:create_app()"

Gunicorn reads this module before it imports the app, so the environment set here is in
place before MLflow, XGBoost or prometheus_client are first imported.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from typing import Any

# Native thread pools (OpenMP in XGBoost) are not fork-safe: a pool started in the master
# hangs the forked workers. One native thread per worker also keeps 2 workers from
# fighting over 2 cores. An explicit value in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Prometheus multiprocess mode: every worker writes samples to files in this directory.
# It must be set before prometheus_client is imported and be empty at start.
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "serving-metrics")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)

from prometheus_client import multiprocess  # noqa: E402  (needs the directory above)

from app.log import build_logging_config  # noqa: E402
from app.metrics import count_ready_workers, render_merged  # noqa: E402
from app.ops_server import OpsServer  # noqa: E402
from app.probes import Readiness  # noqa: E402
from app.settings import Settings  # noqa: E402

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "uvicorn_worker.UvicornWorker"
preload_app = True  # load the model once in the master; workers share it after fork
timeout = _settings.timeout_seconds
graceful_timeout = _settings.graceful_timeout_seconds
keepalive = _settings.keepalive_seconds
max_requests = _settings.max_requests
max_requests_jitter = _settings.max_requests_jitter
logconfig_dict = build_logging_config(_settings.log_level)
accesslog = None  # the app writes one JSON line per request
forwarded_allow_ips = "*"


def pre_fork(server: Any, worker: Any) -> None:
    """Move everything the master built (the model above all) out of the GC's reach.

    A collection in a worker would otherwise write to every object header it scans and
    copy the shared pages: freezing keeps the preloaded model shared between workers.
    """
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's live gauges out of the merged metrics."""
    multiprocess.mark_process_dead(worker.pid)


_ops: list[OpsServer] = []


def when_ready(server: Any) -> None:
    """Start the ops listener (OPS_PORT) in the master, before the first worker forks."""
    if not _settings.ops_port:
        return
    try:
        ops = OpsServer(
            _settings.host,
            _settings.ops_port,
            ready=lambda: pod_readiness(server),
            render_metrics=render_merged,
        )
    except OSError as error:
        server.log.critical("the ops listener cannot bind, server not started: %s", error)
        raise SystemExit(3) from None
    ops.start()
    _ops.append(ops)


def pod_readiness(server: Any) -> Readiness:
    """Ready when every worker Gunicorn runs has passed its warm-up and none is draining.

    A worker that is replaced (crash, MAX_REQUESTS) makes the pod not ready until its
    successor has warmed up: the kubelet's failure threshold rides out the short gap.
    """
    if not server.LISTENERS:  # closed by Gunicorn as soon as it starts shutting down
        return Readiness(False, "shutting down")
    ready, expected = count_ready_workers(), server.num_workers
    if ready >= expected:
        return Readiness(True, "ready")
    return Readiness(False, f"{ready} of {expected} workers warmed up")


def on_exit(server: Any) -> None:
    for ops in _ops:
        ops.stop()
