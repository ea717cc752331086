"""Gunicorn configuration of the production command:

    gunicorn --config python:app.gunicorn_conf "app.main:create_app()"

Gunicorn reads this module before it imports the app, so the environment set here is in
place before MLflow, XGBoost or prometheus_client are first imported.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import shutil
import tempfile
from typing import Any

# Native thread pools (OpenMP in XGBoost) are not fork-safe: a pool started in the master
# hangs the forked workers. One native thread per worker also keeps 2 workers from
# fighting over 2 cores. An explicit value in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# MLflow's loggers get a handler of their own unless told not to; without it their records
# reach ours, as JSON lines with credentials redacted. Warnings take the same way.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
logging.captureWarnings(True)

# Prometheus multiprocess mode: every worker writes samples to files in this directory.
# It must be set before prometheus_client is imported and be empty at start. Unless one is
# given, each instance makes its own, so two servers on one machine never share (or wipe)
# each other's samples; a given one is wiped at start.
_given_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _given_metrics_dir:
    shutil.rmtree(_given_metrics_dir, ignore_errors=True)
    os.makedirs(_given_metrics_dir, exist_ok=True)
    _own_metrics_dir = None
else:
    _own_metrics_dir = tempfile.mkdtemp(prefix="serving-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir
_master_pid = os.getpid()


@atexit.register
def _remove_own_metrics_dir() -> None:
    """Remove the directory this instance made (never a given one) when the master exits,
    after a stop or a failed start alike; forked workers inherit this hook and skip it."""
    if _own_metrics_dir is not None and os.getpid() == _master_pid:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


from prometheus_client import multiprocess  # noqa: E402  (needs the directory above)

from app.observability.log import build_logging_config  # noqa: E402
from app.observability.metrics import (  # noqa: E402
    WorkerExits,
    count_ready_workers,
    export_worker_timeout,
    render_merged,
)
from app.readiness import PodReadiness, Readiness  # noqa: E402
from app.server.ops_server import OpsServer  # noqa: E402
from app.settings import Settings  # noqa: E402

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "app.server.worker.ServingWorker"  # Uvicorn's, with headers bounded
preload_app = True  # load the model once in the master; workers share it after fork
timeout = _settings.timeout_seconds
graceful_timeout = _settings.graceful_timeout_seconds
keepalive = _settings.keepalive_seconds
max_requests = _settings.max_requests
max_requests_jitter = _settings.max_requests_jitter
logconfig_dict = build_logging_config(_settings.log_level)
accesslog = None  # the app writes one JSON line per request
forwarded_allow_ips = "*"
# Gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) would be shared by every instance
# of a user and is unused here: nothing should manage the server behind Kubernetes' back.
control_socket_disable = True


def pre_fork(server: Any, worker: Any) -> None:
    """Move everything the master built (the model above all) out of the GC's reach.

    A collection in a worker would otherwise write to every object header it scans and
    copy the shared pages: freezing keeps the preloaded model shared between workers.
    """
    gc.freeze()


_worker_exits = WorkerExits()  # made in the master, so both series exist from the start
_worker_timeout = export_worker_timeout(timeout)
_aborted: list[bool] = []  # in a worker: whether Gunicorn aborted it (TIMEOUT_SECONDS)


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's live gauges out of the merged metrics; count the exit."""
    multiprocess.mark_process_dead(worker.pid)
    _worker_exits.reaped.inc()


def worker_abort(worker: Any) -> None:
    """In a worker Gunicorn aborts (SIGABRT) for being silent longer than TIMEOUT_SECONDS."""
    _aborted.append(True)


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker leaving its loop: an orderly exit, unless it was aborted."""
    if not _aborted:
        _worker_exits.orderly.inc()


_ops: list[OpsServer] = []


def when_ready(server: Any) -> None:
    """Start the ops listener (OPS_PORT) in the master, before the first worker forks."""
    if not _settings.ops_port:
        return
    try:
        ops = OpsServer(
            _settings.host,
            _settings.ops_port,
            ready=lambda: _readiness_of(server),
            render_metrics=render_merged,
        )
    except OSError as error:
        server.log.critical("the ops listener cannot bind, server not started: %s", error)
        raise SystemExit(3) from None
    ops.start()
    _ops.append(ops)


_pod_readiness = PodReadiness()


def _readiness_of(server: Any) -> Readiness:
    """The pod's readiness (app.readiness) from what Gunicorn's master knows."""
    shutting_down = not server.LISTENERS  # closed by Gunicorn as soon as it starts to
    ready_workers = 0 if shutting_down else count_ready_workers()
    return _pod_readiness(shutting_down, ready_workers, server.num_workers)


def on_exit(server: Any) -> None:
    for ops in _ops:
        ops.stop()
