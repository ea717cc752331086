"""What a shadow model costs the served one: the production command with and without one.

python -m bench.shadow [--quick] [--rounds N] [--duration S] [--warmup S]

`make bench` runs it after bench.compare and bench.overhead with the same BENCH_FLAGS; the
flags of theirs it does not take are ignored (and named).

Trains the demo model into a temporary SQLite registry and starts the production command
twice, 2 workers each: one serving it alone, one serving it with the same version as its
shadow (SHADOW_MODEL_URI; a candidate of the same size and cost). wrk drives both with 1-row
bodies at 1, 8 and 64 connections, the two servers alternately, over several rounds. Prints
throughput and latency side by side with the ratios, the shadow's rows compared and dropped,
and each server's memory (PSS); writes bench/results/shadow.json. Both servers share the
machine's cores with wrk: the figures are for this machine and its load at the time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.load import LoadResult, find_wrk, run_load, wrk_version
from bench.machine import describe_machine
from bench.payloads import make_body
from bench.proctree import memory, wait_idle
from bench.registry import create_demo_registry
from bench.servers import PROJECT_ROOT, Server, free_port, http_get, ours_spec, serving_together

CONNECTIONS = (1, 8, 64)
WORKERS = 2
OFF, ON = "shadow off", "shadow on"
RESULT_PATH = PROJECT_ROOT / "bench" / "results" / "shadow.json"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def shadow_rows(server: Server) -> dict[str, float]:
    """model_shadow_rows_total by outcome, from the server's /metrics (workers merged)."""
    _, exposition = http_get(f"{server.spec.url}/metrics")
    text = exposition.decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "model_shadow_rows_total"
    }


def pss_mib(server: Server) -> float:
    return sum(process.pss_bytes for process in memory(server.pid)) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shadow", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per cell")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s: a smoke run")
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        progress(f"ignored (flags of the other benches): {' '.join(ignored)}")
    rounds, duration = (1, 3) if args.quick else (args.rounds, args.duration)
    wrk = find_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as scratch_name:
        scratch = Path(scratch_name)
        progress("training the demo model into a temporary registry")
        tracking_uri, model_uri = create_demo_registry(scratch / "registry")
        off = replace(ours_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch), name=OFF)
        on = ours_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch)
        on = replace(on, name=ON, env=on.env | {"SHADOW_MODEL_URI": model_uri})
        body = scratch / "body.json"
        body.write_bytes(make_body(1))
        runs: dict[tuple[str, int], list[LoadResult]] = {}
        with serving_together([off, on], scratch) as servers:
            memory_mib = {server.spec.name: pss_mib(server) for server in servers}
            for server in servers:  # warm both: first requests, first shadow predicts
                run_load(wrk, f"{server.spec.url}/invocations", body, 8, args.warmup)
            before = shadow_rows(servers[1])
            for round_index in range(rounds):
                for connections in CONNECTIONS:
                    for server in servers if round_index % 2 == 0 else servers[::-1]:
                        wait_idle(server.pid, limit_s=5.0)
                        progress(f"round {round_index + 1}: {server.spec.name}, {connections} conn")
                        result = run_load(
                            wrk, f"{server.spec.url}/invocations", body, connections, duration
                        )
                        runs.setdefault((server.spec.name, connections), []).append(result)
            wait_idle(servers[1].pid, limit_s=10.0)
            after = shadow_rows(servers[1])
            memory_after = {server.spec.name: pss_mib(server) for server in servers}
    offered = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    report = summarize(runs, offered, memory_mib, memory_after, rounds, duration)
    report["machine"] = describe_machine(PROJECT_ROOT, wrk_version(wrk))
    RESULT_PATH.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    print(f"\nwritten: {RESULT_PATH.relative_to(PROJECT_ROOT)}")
    return 0


def summarize(
    runs: dict[tuple[str, int], list[LoadResult]],
    offered: dict[str, float],
    memory_start: dict[str, float],
    memory_end: dict[str, float],
    rounds: int,
    duration: int,
) -> dict[str, Any]:
    cells = []
    for connections in CONNECTIONS:
        row: dict[str, Any] = {"connections": connections}
        for name in (OFF, ON):
            results = runs[(name, connections)]
            row[name] = {
                "requests_per_second": statistics.median(r.requests_per_second for r in results),
                "p50_ms": statistics.median(r.p50_ms for r in results),
                "p99_ms": statistics.median(r.p99_ms for r in results),
                "errors": sum(r.errors for r in results),
            }
        row["throughput_ratio"] = (
            row[ON]["requests_per_second"] / row[OFF]["requests_per_second"]
            if row[OFF]["requests_per_second"]
            else None
        )
        row["p99_ratio"] = row[ON]["p99_ms"] / row[OFF]["p99_ms"] if row[OFF]["p99_ms"] else None
        cells.append(row)
    return {
        "command": "python -m bench.shadow" + ("" if rounds > 1 else " --quick"),
        "rounds": rounds,
        "duration_s": duration,
        "cells": cells,
        "shadow_rows_during_the_run": offered,
        "memory_pss_mib_after_start": memory_start,
        "memory_pss_mib_after_run": memory_end,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"1-row requests, {WORKERS} workers each, median of {report['rounds']} round(s) of "
        f"{report['duration_s']} s per cell",
        f"{'conn':>4} | {'off req/s':>9} {'on req/s':>9} {'ratio':>5} | "
        f"{'off p99':>8} {'on p99':>8} {'ratio':>5} | {'off p50':>8} {'on p50':>8}",
    ]
    for row in report["cells"]:
        off, on = row[OFF], row[ON]
        lines.append(
            f"{row['connections']:>4} | {off['requests_per_second']:>9.0f} "
            f"{on['requests_per_second']:>9.0f} {row['throughput_ratio'] or 0:>5.2f} | "
            f"{off['p99_ms']:>6.1f}ms {on['p99_ms']:>6.1f}ms {row['p99_ratio'] or 0:>5.2f} | "
            f"{off['p50_ms']:>6.1f}ms {on['p50_ms']:>6.1f}ms"
        )
    rows = report["shadow_rows_during_the_run"]
    total = sum(rows.values())
    shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(rows.items()))
    lines.append(f"shadow rows during the run: {shown} (of {total:.0f} offered)")
    start, end = report["memory_pss_mib_after_start"], report["memory_pss_mib_after_run"]
    lines.append(
        "memory (PSS, all processes): "
        + ", ".join(f"{n} {start[n]:.0f} MiB at start, {end[n]:.0f} MiB after" for n in (OFF, ON))
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
