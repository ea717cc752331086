"""Logging: one dict config for Gunicorn and the app, JSON lines, model identity on each line.

Every line passes one formatter, which redacts credentials (a registry address with
`user:password@`, tokens) from every field, message and traceback alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from model_fetch.redaction import redact_values

_model_identity: dict[str, str | None] = {"model_name": None, "model_version": None}
# Set by app.http.tracing in a worker where tracing is on: the current span's ids, or None.
_trace_ids: Callable[[], dict[str, str] | None] | None = None


def set_model_identity(name: str | None, version: str | None) -> None:
    """Called once the model is loaded, before workers fork, so every process inherits it."""
    _model_identity.update(model_name=name, model_version=version)


def set_trace_ids(source: Callable[[], dict[str, str] | None] | None) -> None:
    """Put `trace_id` and `span_id` (from `source`) on every record; None stops it."""
    global _trace_ids
    _trace_ids = source


class ModelIdentityFilter(logging.Filter):
    """Adds `model_name` and `model_version` to every record, and the trace and span ids
    of the request being handled when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.update(_model_identity)
        if _trace_ids is not None and (ids := _trace_ids()) is not None:
            record.__dict__.update(ids)
        record.__dict__.pop("color_message", None)  # Uvicorn's ANSI-coloured duplicate
        return True


class RedactingJsonFormatter(OrjsonFormatter):
    """JSON lines with credentials redacted from every value, just before serialising."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = redact_values(log_data)
        return redacted


def build_logging_config(level: str = "info") -> dict[str, Any]:
    """The dictConfig Gunicorn applies (`logconfig_dict`) in the master and every worker."""
    level = level.upper()
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["model_identity"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"model_identity": {"()": ModelIdentityFilter}},
        "formatters": {
            "json": {
                "()": RedactingJsonFormatter,
                "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                "rename_fields": {"levelname": "level", "asctime": "time", "process": "pid"},
                "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            }
        },
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # Our middleware writes one line per request; the servers' own access logs are off.
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
            "uvicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
            "uvicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # MLflow and Alembic are chatty at INFO about things an operator cannot act on.
            "mlflow": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }
