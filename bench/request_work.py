"""The work one scoring request costs a served worker, in this checkout and another, with a
count machine noise cannot move.

    .venv/bin/python -m bench.request_work --baseline-tree DIR [--requests 1000] [--rounds 6]

DIR is another checkout (`git archive REV | tar -x -C DIR`). On a shared 2-core machine a
1-connection req/s cell of the side-by-side benchmarks moves by tens of percent between
servers running the same code, with the neighbours' load and where the scheduler places
the load generator and the worker. Each checkout's production command (1 worker, the
demo model trained into a temporary registry, a 1-row body) is measured here two ways:

1. Python function calls per request in the worker, counted by cProfile around
   `--requests` sequential requests after a warm-up (bench/profiled_worker_conf.py): the
   same code gives the same count whatever the machine does. Only the worker's main
   thread is counted; a lone request to a quick model predicts there (app.runtime.batching).
2. CPU (master and worker) and wall time per request over the same sequential requests,
   unprofiled, the checkouts alternating for `--rounds` rounds: medians, and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import os
import pstats
import shutil
import signal
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from bench.payloads import make_body
from bench.proctree import cpu_seconds, list_tree
from bench.registry import create_demo_registry
from bench.servers import HOST, PROJECT_ROOT, Server, free_port, ours_spec, serving
from tests.support.waiting import wait_until

PROFILED_CONF = Path(__file__).with_name("profiled_worker_conf.py")
WARM_UP_REQUESTS = 100
JSON_HEADERS = {"Content-Type": "application/json"}


def post_sequentially(server: Server, body: bytes, requests: int) -> None:
    """`requests` scoring requests one after another on one keep-alive connection."""
    connection = http.client.HTTPConnection(HOST, server.spec.port, timeout=30)
    try:
        for _ in range(requests):
            connection.request("POST", "/invocations", body=body, headers=JSON_HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{server.spec.name} answered {response.status}")
    finally:
        connection.close()


def count_calls(server: Server, body: bytes, requests: int, profile_out: Path) -> float:
    """Python calls per request in the worker's main thread, with the profiler signal."""
    post_sequentially(server, body, WARM_UP_REQUESTS)
    worker = list_tree(server.pid)[1]
    os.kill(worker, signal.SIGUSR2)
    post_sequentially(server, body, requests)
    os.kill(worker, signal.SIGUSR2)
    wait_until(profile_out.exists, 30, f"{server.spec.name}'s profile written")
    time.sleep(0.5)  # the dump ends after the file appears
    total: int = pstats.Stats(str(profile_out)).total_calls  # type: ignore[attr-defined]
    return total / requests


def time_requests(server: Server, body: bytes, requests: int) -> tuple[float, float]:
    """CPU ms and wall ms per request over `requests` sequential requests."""
    cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
    post_sequentially(server, body, requests)
    wall = time.perf_counter() - started
    return (cpu_seconds(server.pid) - cpu_before) * 1000 / requests, wall * 1000 / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    trees = {"baseline": args.baseline_tree.resolve(), "this checkout": PROJECT_ROOT}
    body = make_body(1)
    with (
        tempfile.TemporaryDirectory(prefix="bench-request-work-") as scratch_dir,
        ExitStack() as stack,
    ):
        scratch = Path(scratch_dir)
        tracking_uri, model_uri = create_demo_registry(scratch / "registry")
        shutil.copy(PROFILED_CONF, scratch / PROFILED_CONF.name)
        servers: dict[str, Server] = {}
        for label, tree in trees.items():
            spec = ours_spec(model_uri, tracking_uri, 1, free_port(), scratch)
            env = spec.env | {
                "PYTHONPATH": str(scratch),
                "BENCH_PROFILE_OUT": str(scratch / f"profile-{spec.port}.out"),
            }
            command = [
                arg.replace("python:app.gunicorn_conf", f"python:{PROFILED_CONF.stem}")
                for arg in spec.command
            ]
            spec = replace(spec, name=label, cwd=tree, env=env, command=command)
            servers[label] = stack.enter_context(serving(spec, scratch))
            print(f"{label}: {tree}")
        calls = {
            label: count_calls(
                server, body, args.requests, Path(server.spec.env["BENCH_PROFILE_OUT"])
            )
            for label, server in servers.items()
        }
        timed: dict[str, list[tuple[float, float]]] = {label: [] for label in servers}
        order = list(servers)
        for round_index in range(args.rounds):
            for label in order if round_index % 2 == 0 else order[::-1]:
                timed[label].append(time_requests(servers[label], body, args.requests))
    _print_table(calls, timed, args.requests, args.rounds)
    return 0


def _print_table(
    calls: dict[str, float],
    timed: dict[str, list[tuple[float, float]]],
    requests: int,
    rounds: int,
) -> None:
    print(
        f"\n{requests} sequential 1-row requests per cell, {rounds} rounds alternating; "
        "medians; ratios to the baseline"
    )
    print(
        f"{'checkout':<15}{'calls/req':>10}{'ratio':>7}{'cpu ms/req':>12}{'ratio':>7}"
        f"{'wall ms/req':>13}{'ratio':>7}"
    )
    base_label = next(iter(calls))
    base_cpu = statistics.median(cpu for cpu, _ in timed[base_label])
    base_wall = statistics.median(wall for _, wall in timed[base_label])
    for label, count in calls.items():
        cpu = statistics.median(c for c, _ in timed[label])
        wall = statistics.median(w for _, w in timed[label])
        print(
            f"{label:<15}{count:>10.0f}{count / calls[base_label]:>7.3f}{cpu:>12.3f}"
            f"{cpu / base_cpu:>7.2f}{wall:>13.3f}{wall / base_wall:>7.2f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
