"""Bounded HTTP retries for MLflow, so an unreachable registry fails in seconds, not minutes."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# MLflow's own defaults (7 retries, backoff factor 2, 120 s timeout) keep a CI job or a
# starting pod waiting for minutes on a registry that is down. These give up after about
# 3 s on a refused connection and 3 x 15 s on a silent one. A value the user set wins.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    # Download progress bars are noise in CI and server logs.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def apply_http_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Bound MLflow's HTTP retries unless the user configured them.

    MLflow reads these variables at each request, so calling this before the first
    registry call is enough.
    """
    for key, value in HTTP_DEFAULTS.items():
        environ.setdefault(key, value)
