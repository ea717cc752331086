"""`python -m bench.shed_cost`: what a shed 503 costs the server, end to end.

The production command (2 workers) on the demo model admits one request per worker
(MAX_CONCURRENT_REQUESTS=1) and is driven closed-loop at 64 connections by
bench/loadgen.py, so nearly every answer is a 503. Prints the CPU time of all the
server's processes per answer, and answers per second. `--baseline-tree DIR` measures
another checkout the same way (`git archive REV | tar -x -C DIR`), the two alternating
for `--rounds` rounds. Everything binds 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.overload import WORKERS, run_loadgen, server_spec
from bench.payloads import make_body
from bench.proctree import cpu_seconds, wait_idle
from bench.registry import create_demo_registry
from bench.servers import PROJECT_ROOT, serving

CONNECTIONS = 64


def measure(
    label: str, tree: Path, registry: tuple[str, str], scratch: Path, seconds: float
) -> str:
    tracking_uri, model_uri = registry
    scratch.mkdir(parents=True, exist_ok=True)
    body_file = scratch / "body-1.json"
    body_file.write_bytes(make_body(1))
    env = {"MAX_CONCURRENT_REQUESTS": "1"}
    spec, _ = server_spec(label, tree, model_uri, tracking_uri, scratch / label, env)
    with serving(spec, scratch) as server:
        wait_idle(server.pid)
        before = cpu_seconds(server.pid)
        result = run_loadgen(spec.port, body_file, seconds, [f"--connections={CONNECTIONS}"])
        spent = cpu_seconds(server.pid) - before
    answered = result["answered"]
    counts = {status: figures["count"] for status, figures in result["by_status"].items()}
    return (
        f"{label:8s} {1e6 * spent / answered:7.1f} us of server CPU per answer, "
        f"{answered / result['duration_s']:7.0f} answers/s, {counts}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per run (8)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-tree", type=Path, help="also measure this checkout")
    args = parser.parse_args(argv)
    trees = [("after", PROJECT_ROOT)]
    if args.baseline_tree:
        trees.insert(0, ("before", args.baseline_tree.resolve()))
    with tempfile.TemporaryDirectory(prefix="bench-shed-") as temp:
        scratch = Path(temp)
        print("training the demo model into a temporary registry", file=sys.stderr)
        registry = create_demo_registry(scratch)
        print(f"{WORKERS} workers, 1 admitted request each, {CONNECTIONS} connections")
        for round_index in range(args.rounds):
            for label, tree in trees:
                line = measure(label, tree, registry, scratch / str(round_index), args.seconds)
                print(f"round {round_index + 1}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
