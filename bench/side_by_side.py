"""Variants of the production command measured side by side with wrk, and their table.

Cells alternate between the servers and the order flips every round, so a neighbour's load
falls on every server alike. Per server and connection count: the medians over rounds of
req/s, p50 and p99, and of the server's CPU time per answered request (all its processes):
on a shared machine the CPU per request moves far less with the neighbours' load than
req/s does. Ratios are to the first server. Used by bench.tracing_cost and
bench.guardrails_cost.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench.load import LoadResult, run_load
from bench.proctree import cpu_seconds, wait_idle
from bench.servers import Server

# (server label, connections) -> per round: the load's result and the CPU ms per request.
Cells = dict[tuple[str, int], list[tuple[LoadResult, float]]]


def measure(
    servers: Sequence[tuple[str, Server]],
    connections: Sequence[int],
    rounds: int,
    duration_s: int,
    body_file: Path,
    wrk: str,
    requests: Mapping[str, tuple[str, Path]] | None = None,
) -> Cells:
    """`requests`: a label's own path and body, in place of /invocations and `body_file`
    (bench.v2_protocol: two protocols on one server)."""
    results: Cells = {}
    for round_index in range(rounds):
        order = servers if round_index % 2 == 0 else servers[::-1]
        for count in connections:
            for label, server in order:
                path, body = (requests or {}).get(label, ("/invocations", body_file))
                wait_idle(server.pid)
                before = cpu_seconds(server.pid)
                url = server.spec.url + path
                load = run_load(wrk, url, body, count, duration_s)
                wait_idle(server.pid)  # what is still queued is paid for in this run
                cpu_ms = (cpu_seconds(server.pid) - before) * 1000 / max(load.requests, 1)
                results.setdefault((label, count), []).append((load, cpu_ms))
    return results


def median_rate(results: Cells, label: str, connections: int) -> float:
    return statistics.median(load.requests_per_second for load, _ in results[(label, connections)])


def print_table(
    results: Cells,
    labels: Sequence[str],
    connections: Sequence[int],
    after_each: Callable[[int], None] = lambda connections: None,
) -> None:
    """Medians over rounds, ratios to the first label; `after_each` prints under each
    connection count's rows (a target's verdict)."""
    width = max(len(label) for label in labels) + 2
    print(
        f"\n{'server':<{width}}{'conns':>6}{'req/s':>9}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'cpu ms/req':>11}{'ratio':>7}{'err':>5}"
    )
    for count in connections:
        first_rate = median_rate(results, labels[0], count)
        first_cpu = statistics.median(cpu for _, cpu in results[(labels[0], count)])
        for label in labels:
            runs = results[(label, count)]
            rate = median_rate(results, label, count)
            cpu = statistics.median(cpu for _, cpu in runs)
            print(
                f"{label:<{width}}{count:>6}{rate:>9.0f}{rate / first_rate:>7.2f}"
                f"{statistics.median(load.p50_ms for load, _ in runs):>8.2f}"
                f"{statistics.median(load.p99_ms for load, _ in runs):>8.2f}"
                f"{cpu:>11.3f}{cpu / first_cpu:>7.2f}"
                f"{sum(load.errors for load, _ in runs):>5}"
            )
        after_each(count)
