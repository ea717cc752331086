"""The Gunicorn worker of the production command: Uvicorn's, with a hardened protocol; and
its watch on the master.

The protocol is Uvicorn's httptools protocol with one job per class, each in its module:
  accept_burst    on a busy worker, a connection's arrival accepts those queued behind it
  lingering       a close while the request is still arriving lingers instead of resetting
  head_bound      a request head past MAX_HEADER_BYTES is answered 431 at once
  early_refusal   a scoring request past the admission bound is answered 503 at its head
  coalescing      a response's head is written together with the body that follows it
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from app.asgi_compat import worker_config
from app.server.accept_burst import AcceptsQueuedConnections, listen_on
from app.server.early_refusal import RefusesEarly
from app.server.head_bound import BoundsRequestHead
from app.server.lingering import LingersOnClose

logger = logging.getLogger(__name__)


class ServingProtocol(AcceptsQueuedConnections, LingersOnClose, BoundsRequestHead, RefusesEarly):
    """The jobs in the order a request meets them: data that arrives after an answer is
    dropped (lingering) before it is parsed; a head is measured (head_bound) before it can
    be admitted or refused (early_refusal)."""


class ServingWorker(UvicornWorker):  # type: ignore[misc]
    """What `worker_class` names in app.gunicorn_conf."""

    def run(self) -> None:
        listen_on(self.sockets)
        super().run()

    def init_signals(self) -> None:
        """Uvicorn stops gracefully on SIGTERM or SIGINT, then raises the signal again
        (uvicorn.Server.capture_signals) under the handler it found. The Uvicorn worker left
        the default one, so a stopped worker died by the signal: Gunicorn's worker_exit hook
        never ran and a stop was counted as a death (serving_worker_orderly_exits_total,
        ModelServingWorkersDying). That second signal now ends the worker in order."""
        super().init_signals()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, _exit_in_order)

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = worker_config(http=ServingProtocol)


def _exit_in_order(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


async def exit_when_orphaned(every_seconds: float = 1.0) -> None:
    """Stop this worker gracefully if its master dies.

    Gunicorn's own workers check for a changed parent; the Uvicorn worker does not, so a
    master killed with SIGKILL would leave workers serving on the shared socket forever.
    """
    parent = os.getppid()
    while True:
        await asyncio.sleep(every_seconds)
        if os.getppid() != parent:
            logger.error("the master process %d is gone; this worker stops", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return
