"""Benchmark our server against `mlflow models serve` on the same registered model.

python -m bench.compare [--quick] [--rounds N] [--duration S] [--warmup S]
                        [--model-uri URI --tracking-uri URI]

Without --model-uri it trains the full demo model into a temporary SQLite registry. Both
servers run with 2 workers on 127.0.0.1 and are driven by wrk at 1, 8 and 64 connections
with 1-row and 100-row bodies, alternately, over several rounds. Prints a table and the
issue's targets; writes bench/results/latest.json and latest.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench.chart import write_chart
from bench.inprocess import InProcessTimer
from bench.load import LoadGeneratorError, find_wrk, run_load, wrk_version
from bench.machine import describe_machine
from bench.payloads import BODY_ROWS, make_body
from bench.proctree import cpu_seconds, memory, wait_idle
from bench.report import AFTER_RUNS, IDLE, CellRun, MemorySample, Results, render
from bench.servers import (
    PROJECT_ROOT,
    Server,
    ServerSpec,
    free_port,
    ours_spec,
    serving,
    theirs_spec,
)
from bench.verify import Verification, verify

CONNECTIONS = (1, 8, 64)
WORKERS = 2
WARMUP_CONNECTIONS = 8  # enough in flight that every worker gets some of the warm-up
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
# A server with periodic background work never looks idle; do not let that stall each cell.
CELL_IDLE_LIMIT_S = 5.0


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds the `with` blocks, so every server is stopped and temp dirs go.
    raise SystemExit(128 + signum)


def run_cell(
    wrk: str,
    server: Server,
    body_file: Path,
    rows: int,
    connections: int,
    duration_s: int,
    round_index: int,
    path: str = "/invocations",
) -> CellRun:
    wait_idle(server.pid, limit_s=CELL_IDLE_LIMIT_S)
    before = cpu_seconds(server.pid)
    load = run_load(wrk, server.spec.url + path, body_file, connections, duration_s)
    # Requests still queued when wrk stopped are finished, and paid for, inside this cell.
    wait_idle(server.pid, limit_s=CELL_IDLE_LIMIT_S)
    return CellRun(
        server.spec.name, rows, connections, round_index, load, cpu_seconds(server.pid) - before
    )


def drive(
    wrk: str,
    servers: list[Server],
    bodies: dict[int, Path],
    timer: InProcessTimer,
    args: argparse.Namespace,
) -> tuple[list[CellRun], list[dict[str, dict[int, float]]]]:
    """Every cell for every server, alternating servers cell by cell; order flips each round.

    The in-process limit is measured at the start of every round, under the same load
    from the rest of the machine as the cells that follow.
    """
    runs, limits = [], []
    for round_index in range(args.rounds):
        limits.append(timer.measure(args.repeats))
        order = servers if round_index % 2 == 0 else servers[::-1]
        for rows, body_file in bodies.items():
            for server in order:
                run_load(
                    wrk,
                    server.spec.url + "/invocations",
                    body_file,
                    WARMUP_CONNECTIONS,
                    args.warmup,
                )
            for connections in CONNECTIONS:
                for server in order:
                    run = run_cell(
                        wrk, server, body_file, rows, connections, args.duration, round_index
                    )
                    runs.append(run)
                    progress(
                        f"round {round_index + 1}/{args.rounds} {rows:3d} row(s) "
                        f"c={connections:2d} {run.server:6}: "
                        f"{run.load.requests_per_second:8.1f} req/s, "
                        f"p50 {run.load.p50_ms:7.2f} ms, p99 {run.load.p99_ms:8.2f} ms, "
                        f"{run.load.errors} errors, {run.cpu_ms_per_request:.2f} CPU ms/req"
                    )
    return runs, limits


def measure_worker_memory(
    wrk: str,
    model_uri: str,
    tracking_uri: str,
    scratch: Path,
    bodies: dict[int, Path],
    warmup_s: int,
) -> list[MemorySample]:
    """PSS of each server with 1 and then 2 workers, idle after the same short warm-up."""
    samples = []
    for make_spec in (ours_spec, theirs_spec):
        for workers in (1, 2):
            spec = make_spec(model_uri, tracking_uri, workers, free_port(), scratch)
            progress(f"memory: starting {spec.name} with {workers} worker(s)")
            with serving(spec, scratch) as server:
                for body_file in bodies.values():
                    run_load(
                        wrk, spec.url + "/invocations", body_file, WARMUP_CONNECTIONS, warmup_s
                    )
                wait_idle(server.pid)
                samples.append(MemorySample(spec.name, workers, IDLE, memory(server.pid)))
    return samples


def benchmark(
    wrk: str,
    args: argparse.Namespace,
    scratch: Path,
    command: str,
    settings: dict[str, Any],
    machine: dict[str, Any],
) -> Results | None:
    """The whole run; None when the servers disagree, so there is nothing worth timing."""
    if args.model_uri:
        model_uri, tracking_uri = args.model_uri, args.tracking_uri
    else:
        progress("training the demo model into a temporary registry")
        from bench.registry import create_demo_registry  # imports MLflow and XGBoost

        tracking_uri, model_uri = create_demo_registry(scratch)
    bodies = {}
    for rows in BODY_ROWS:
        bodies[rows] = scratch / f"body-{rows}.json"
        bodies[rows].write_bytes(make_body(rows))

    specs: list[ServerSpec] = [
        make_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch)
        for make_spec in (ours_spec, theirs_spec)
    ]
    progress("starting both servers and the in-process timer")
    with (
        InProcessTimer(model_uri, tracking_uri, scratch, PROJECT_ROOT) as timer,
        serving(specs[0], scratch) as ours,
        serving(specs[1], scratch) as theirs,
    ):
        verifications: list[Verification] = [
            verify(ours.spec.url, theirs.spec.url, body_file.read_bytes(), rows)
            for rows, body_file in bodies.items()
        ]
        for item in verifications:
            progress(f"check {item.rows} row(s): {item.statuses} {item.detail}")
        if not all(item.equal for item in verifications):
            return None
        runs, limits = drive(wrk, [ours, theirs], bodies, timer, args)
        after_runs = []
        for server in (ours, theirs):
            wait_idle(server.pid)
            after_runs.append(
                MemorySample(server.spec.name, WORKERS, AFTER_RUNS, memory(server.pid))
            )
    worker_memory = measure_worker_memory(
        wrk, model_uri, tracking_uri, scratch, bodies, max(args.warmup, 2)
    )
    machine["load_average_at_end"] = os.getloadavg()
    return Results(
        command=command,
        settings=settings,
        machine=machine,
        model_uri=model_uri,
        server_commands={spec.name: spec.describe() for spec in specs},
        verifications=verifications,
        inprocess=limits,
        runs=runs,
        memory=[*worker_memory, *after_runs],
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all cells (3)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per cell (8)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up per server and body (2)"
    )
    parser.add_argument(
        "--repeats", type=int, default=300, help="predict calls for the in-process time (300)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in about 3 minutes: 1 round of 3 s cells, 1 s warm-up",
    )
    parser.add_argument("--model-uri", help="bench this model instead of training the demo")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="registry of --model-uri (default: MLFLOW_TRACKING_URI)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.repeats = 1, 3, 1, 100
    if args.model_uri and not args.tracking_uri:
        parser.error("--model-uri needs --tracking-uri or MLFLOW_TRACKING_URI")
    if min(args.rounds, args.duration, args.warmup, args.repeats) < 1:
        parser.error("--rounds, --duration, --warmup and --repeats must be at least 1")
    return args


def prepare_run() -> str | None:
    """Signals set so a stopped run unwinds (servers stopped, files kept), and wrk's path;
    None, with the install hint printed, when wrk is missing."""
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Ctrl-C must unwind too, even when a background shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return find_wrk()
    except LoadGeneratorError as error:
        print(error, file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = prepare_run()
    if wrk is None:
        return 2
    command = shlex.join([sys.executable, "-m", "bench.compare", *sys.argv[1:]])
    settings = {
        "workers": WORKERS,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": list(CONNECTIONS),
        "body_rows": list(BODY_ROWS),
        "inprocess_repeats": args.repeats,
    }
    machine = describe_machine(PROJECT_ROOT, wrk_version(wrk))
    if machine["load_average_at_start"][0] > 0.5 * (machine["cpus"] or 1):
        progress("warning: the machine is busy (see load average); numbers will be noisy")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            results = benchmark(wrk, args, Path(scratch), command, settings, machine)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        return 130
    if results is None:
        print("the servers do not give the same predictions; nothing timed", file=sys.stderr)
        return 1
    print(render(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path, chart_path = RESULTS_DIR / "latest.json", RESULTS_DIR / "latest.png"
    json_path.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    write_chart(results, chart_path)
    print(
        f"\nWrote {json_path.relative_to(PROJECT_ROOT)} and {chart_path.relative_to(PROJECT_ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
