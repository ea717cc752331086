"""The failures drilled: how each is injected, which alerts should catch it, and what an
operator (or the platform) does once it is caught.

A drill's `inject` starts the failure; `recover` is the action taken when a matching alert
arrived, or when the detection wait ran out without one. Failures that end by themselves
(a burst, killed workers the arbiter replaces) have nothing to do there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.overload import rate_of, run_loadgen
from drills.client import SteadyClient
from drills.models import LATENCY_FILE, STUCK_LOAN_AMOUNT
from drills.stack import MlflowServer, ServingPod, registry_command

INJECTED_LATENCY_SECONDS = "0.6"  # above the p99 bound of ModelServingHighLatencyP99 (0.5 s)
KILL_ROUNDS = 8
KILL_PERIOD_SECONDS = 1.5
CAPACITY_SECONDS = 5.0
CAPACITY_CONNECTIONS = 16
BURST_SECONDS = 20.0
BURST_FACTOR = 4
METRICS_TMPFS_SIZE = "1m"
START_FAILURE_SECONDS = 120.0
SHARE_SHIFT_BASELINE_SECONDS = 180.0


@dataclass
class DrillContext:
    """What a drill acts on."""

    pod: ServingPod
    registry: MlflowServer
    versions: dict[str, str]
    faults_dir: Path
    client: SteadyClient
    notes: list[str] = field(default_factory=list)

    def promote(self, role: str) -> None:
        registry_command(
            self.registry, "promote", "--name", self.versions["name"], "--version",
            self.versions[role],
        )  # fmt: skip


@dataclass(frozen=True)
class Failure:
    name: str
    description: str
    base_role: str  # the version in Production before the failure
    alerts: frozenset[str]  # the alerts that should catch it
    inject: Callable[[DrillContext], None]
    recover: Callable[[DrillContext], None]
    recovery: str  # what `recover` stands for, for the report
    setup: Callable[[DrillContext], None] = lambda context: None  # before the pod starts
    cleanup: Callable[[DrillContext], None] = lambda context: None
    needs_canaries: bool = False
    # Traffic before the injection, at least: an alert comparing with the recent past
    # needs that past.
    baseline_seconds: float = 0.0


def _nothing(context: DrillContext) -> None:
    return None


def _kill_workers(context: DrillContext) -> None:
    server = context.pod.running()
    killed = 0
    for _ in range(KILL_ROUNDS):
        for pid in server.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(KILL_PERIOD_SECONDS)
    context.notes.append(f"{killed} worker processes SIGKILLed in {KILL_ROUNDS} rounds")


def _send_stuck_requests(context: DrillContext) -> None:
    """Two requests whose applicant blocks predict: one per worker, if they spread."""
    row_body = _stuck_body(context.client.bodies[0])

    def send() -> None:
        with suppress(httpx.HTTPError):
            httpx.post(
                f"{context.pod.base_url}/invocations",
                content=row_body,
                headers={"Content-Type": "application/json"},
                timeout=90,
            )

    for _ in range(2):
        threading.Thread(target=send, daemon=True).start()
        time.sleep(0.2)


def _stuck_body(body: bytes) -> bytes:
    frame = json.loads(body)
    records = frame["dataframe_records"]
    records[0] = {**records[0], "loan_amount": STUCK_LOAN_AMOUNT}
    return json.dumps({"dataframe_records": records[:1]}).encode()


def _release(role: str) -> Callable[[DrillContext], None]:
    """Promote `role` and roll the pod: a release of that version."""

    def release(context: DrillContext) -> None:
        context.promote(role)
        context.pod.restart()

    return release


def _roll_back(context: DrillContext) -> None:
    """The model rollback path: registry_scripts.rollback, then the pod restarted on it."""
    result = registry_command(context.registry, "rollback", "--name", context.versions["name"])
    context.notes.append(f"rollback: {result.get('rolled_back_from')} -> {result.get('version')}")
    context.pod.restart()


def _slow_down(context: DrillContext) -> None:
    (context.faults_dir / LATENCY_FILE).write_text(INJECTED_LATENCY_SECONDS)


def _speed_up(context: DrillContext) -> None:
    (context.faults_dir / LATENCY_FILE).unlink(missing_ok=True)


def _start_without_registry(context: DrillContext) -> None:
    began = time.monotonic()
    context.registry.stop()
    registry_stopped = time.monotonic()
    context.pod.stop()
    started = time.monotonic()
    context.notes.append(
        f"the registry took {registry_stopped - began:.1f} s to stop, then the pod "
        f"{started - registry_stopped:.1f} s"
    )
    server = context.pod.start()
    try:
        code = server.process.wait(timeout=START_FAILURE_SECONDS)
    except subprocess.TimeoutExpired:
        context.notes.append(f"the start did not fail within {START_FAILURE_SECONDS:g} s")
        return
    last = server.log_tail().strip().splitlines()[-1:] or [""]
    context.notes.append(
        f"the start failed after {time.monotonic() - started:.1f} s with exit code {code}: "
        f"{last[0][:300]}"
    )


def _registry_back(context: DrillContext) -> None:
    context.registry.start()
    context.pod.start()
    context.pod.wait_ready()


def _mount_metrics_tmpfs(context: DrillContext) -> None:
    directory = context.pod.metrics_dir
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={METRICS_TMPFS_SIZE}", "tmpfs", str(directory)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _fill_metrics_dir(context: DrillContext) -> None:
    filler = context.pod.metrics_dir / "filler"
    written = 0
    try:
        with filler.open("wb") as file:
            while written < 64 * 1024 * 1024:
                file.write(b"\0" * 65536)
                file.flush()
                written += 65536
    except OSError as error:
        context.notes.append(f"metrics directory full after {written} bytes of filler: {error}")
    # Workers that are running have their files already; their replacements must make new
    # ones. Recycle them (SIGTERM: the orderly exit MAX_REQUESTS also ends in).
    for pid in context.pod.running().worker_pids():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _free_metrics_dir(context: DrillContext) -> None:
    (context.pod.metrics_dir / "filler").unlink(missing_ok=True)


def _unmount_metrics_tmpfs(context: DrillContext) -> None:
    subprocess.run(
        ["umount", "-l", str(context.pod.metrics_dir)], check=False, capture_output=True, timeout=30
    )


def _burst(context: DrillContext) -> None:
    """BURST_FACTOR times the capacity, offered open-loop for BURST_SECONDS by the
    benchmarks' load generator; the capacity measured first, closed-loop, on the same pod."""
    body_file = context.pod.workdir / "burst-body.json"
    body_file.write_bytes(context.client.bodies[0])
    capacity_run = run_loadgen(
        context.pod.port, body_file, CAPACITY_SECONDS, [f"--connections={CAPACITY_CONNECTIONS}"]
    )
    capacity = rate_of(capacity_run)
    burst = run_loadgen(
        context.pod.port, body_file, BURST_SECONDS, [f"--rate={BURST_FACTOR * capacity:.0f}"]
    )
    context.notes.append(
        f"capacity {capacity:.0f} answers/s ({CAPACITY_CONNECTIONS} connections); the burst "
        f"offered {BURST_FACTOR * capacity:.0f}/s for {BURST_SECONDS:g} s: {burst['sent']} "
        f"sent, {rate_of(burst):.0f}/s answered 200, {rate_of(burst, '503'):.0f}/s shed "
        f"(503), {burst['errors']} socket errors"
    )


FAILURES = (
    Failure(
        "workers-killed",
        f"every worker SIGKILLed, {KILL_ROUNDS} times {KILL_PERIOD_SECONDS:g} s apart",
        "faulty",
        frozenset({"ModelServingWorkersDying", "ModelServingNotReady"}),
        _kill_workers,
        _nothing,
        "none: Gunicorn's arbiter forks replacements",
    ),
    Failure(
        "worker-stuck",
        "two requests whose predict blocks (600 s) for good",
        "faulty",
        frozenset(
            {
                "ModelServingPredictStuck",
                "ModelServingWorkersDying",
                "ModelServingHighErrorRate",
                "ModelServingHighLatencyP99",
            }
        ),
        _send_stuck_requests,
        _nothing,
        "none: Gunicorn aborts a worker silent for TIMEOUT_SECONDS (60 s)",
    ),
    Failure(
        "failing-version",
        "a version raising on about half the requests promoted and rolled out",
        "stable",
        frozenset({"ModelServingErrorBurst", "ModelServingHighErrorRate"}),
        _release("failing"),
        _roll_back,
        "registry_scripts.rollback, then the pod restarted",
        needs_canaries=True,
    ),
    Failure(
        "skewed-version",
        "a version answering nearly every applicant 'high' risk promoted and rolled out",
        "stable",
        frozenset({"ModelScoreDrift", "ModelFeatureDrift", "ModelPredictionShareShift"}),
        _release("skewed"),
        _roll_back,
        "registry_scripts.rollback, then the pod restarted",
        needs_canaries=True,
        # ModelPredictionShareShift compares the last minute with the 30 before it.
        baseline_seconds=SHARE_SHIFT_BASELINE_SECONDS,
    ),
    Failure(
        "latency",
        f"{INJECTED_LATENCY_SECONDS} s added to every predict call",
        "faulty",
        frozenset({"ModelServingLatencyBurst", "ModelServingHighLatencyP99"}),
        _slow_down,
        _speed_up,
        "the latency removed (a fixed version)",
    ),
    Failure(
        "registry-unreachable",
        "the registry stopped, then the pod (re)started",
        "faulty",
        frozenset({"ModelServingDown", "ModelServingNotReady"}),
        _start_without_registry,
        _registry_back,
        "the registry started again, then the pod",
    ),
    Failure(
        "metrics-dir-full",
        f"the metrics directory (a {METRICS_TMPFS_SIZE} tmpfs) filled up, then the workers "
        "recycled",
        "faulty",
        frozenset(
            {"ModelServingWorkersDying", "ModelServingNotReady", "ModelServingHighErrorRate"}
        ),
        _fill_metrics_dir,
        _free_metrics_dir,
        "the space freed",
        setup=_mount_metrics_tmpfs,
        cleanup=_unmount_metrics_tmpfs,
    ),
    Failure(
        "burst",
        f"{BURST_FACTOR} times the measured capacity offered for {BURST_SECONDS:g} s",
        "faulty",
        frozenset({"ModelServingLoadSheddingBurst", "ModelServingLoadSheddingSustained"}),
        _burst,
        _nothing,
        "none: the burst ends",
    ),
)
FAILURES_BY_NAME = {failure.name: failure for failure in FAILURES}
