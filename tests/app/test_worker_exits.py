"""Worker exits as Gunicorn's master and the workers count them, on the real production
command: a worker stopped with SIGTERM (what a pod's stop and a recycle send) exits in order,
one SIGKILLed does not; the difference is what ModelServingWorkersDying alerts on."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.production import StartServer, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # starts the production command

EXITS = "serving_worker_exits_total"
ORDERLY = "serving_worker_orderly_exits_total"


def test_a_worker_stopped_with_sigterm_exits_in_order_and_a_killed_one_does_not(
    start: StartServer,
) -> None:
    server = start()
    wait_ready(server)
    stopped, other = sorted(server.worker_pids())
    os.kill(stopped, signal.SIGTERM)
    wait_until(lambda: server.metric(EXITS) >= 1, 60, "the stopped worker reaped")
    assert server.metric(ORDERLY) == 1, server.log_tail()

    os.kill(other, signal.SIGKILL)
    wait_until(lambda: server.metric(EXITS) >= 2, 60, "the killed worker reaped")
    assert server.metric(ORDERLY) == 1, server.log_tail()
    server.wait_for_workers(2, {stopped, other}, 60)
