"""`make bench-overload`: the production command offered about 4 times its capacity.

Starts the production command (2 workers) on the demo model, finds its capacity with a
short closed-loop step test (more connections each step; capacity is the most 200s per
second, taken at the first step within 10 % of it), then offers `--factor` times that
rate open-loop for `--duration` seconds while a prober times the probes and /metrics the
way the kubelet and Prometheus call them (a new connection each). It prints the figures
with MET / NOT MET against the targets:

- only 200 and 503 answers (and no socket errors);
- p99 of the 503s within 20 ms;
- p99 of the 200s within 2 times the p99 at capacity;
- probes and /metrics within 100 ms at p99, never failing (a failure: not 200, or no
  answer within 2 s, the pod's probe timeout);
- RSS of the server's processes growing less than 10 % over the overload.

`--baseline-tree DIR` first runs the same steps against another checkout (e.g. the
revision before a change, from `git archive REV | tar -x -C DIR`), so before and after
are measured side by side on the same machine state. Everything binds 127.0.0.1 and
every run is bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.loadgen import RESULT_PREFIX
from bench.payloads import make_body
from bench.proctree import list_tree, wait_idle
from bench.registry import create_demo_registry
from bench.servers import PROJECT_ROOT, ServerSpec, free_port, ours_spec, serving

RESULTS = PROJECT_ROOT / "bench" / "results"
STEPS = (4, 8, 16, 32, 64, 128)
WORKERS = 2
UNBOUNDED = 100_000
ADMISSION_LOG = re.compile(r"admission bound: (\d+) requests per worker")
PROBE_TIMEOUT_SECONDS = 2.0  # the Deployment's timeoutSeconds
PROBE_INTERVAL_SECONDS = 0.1  # each path every 100 ms
POD_PROBES = ("/livez", "/readyz", "/ping", "/health", "/metrics")
MLFLOW_PROBES = ("/ping", "/health")
TARGET_503_P99_MS = 20.0
TARGET_200_P99_FACTOR = 2.0
TARGET_PROBE_P99_MS = 100.0
TARGET_RSS_GROWTH = 0.10


def run_loadgen(port: int, body_file: Path, duration: float, mode: list[str]) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--port={port}",
        f"--body-file={body_file}",
        f"--duration={duration}",
        *mode,
    ]
    completed = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=duration + 90,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"the load generator failed: {completed.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return result


def rate_of(result: dict[str, Any], status: str = "200") -> float:
    count = result["by_status"].get(status, {}).get("count", 0)
    return float(count / result["duration_s"])


def p99_of(result: dict[str, Any], status: str) -> float | None:
    figures = result["by_status"].get(status)
    return None if figures is None else float(figures["p99_ms"])


def tree_rss_bytes(root: int) -> int:
    total = 0
    for pid in list_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class Prober:
    """Probes each (port, path) every PROBE_INTERVAL_SECONDS on fresh connections, one
    thread per target (as the kubelet and Prometheus call independently), until stopped."""

    def __init__(self, targets: list[tuple[str, int, str]]) -> None:
        self.samples: dict[str, list[float]] = {label: [] for label, _, _ in targets}
        self.failures: dict[str, int] = {label: 0 for label, _, _ in targets}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=target, name=f"probe {target[0]}")
            for target in targets
        ]

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self, label: str, port: int, path: str) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            ok = self._probe(port, path)
            elapsed = time.perf_counter() - started
            self.samples[label].append(elapsed * 1000)
            if not ok or elapsed > PROBE_TIMEOUT_SECONDS:
                self.failures[label] += 1
            self._stop.wait(max(0.0, PROBE_INTERVAL_SECONDS - elapsed))

    @staticmethod
    def _probe(port: int, path: str) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def summary(self) -> dict[str, dict[str, float]]:
        import numpy as np

        return {
            label: {
                "count": len(ms),
                "failures": self.failures[label],
                "p50_ms": float(np.percentile(ms, 50)) if ms else float("nan"),
                "p99_ms": float(np.percentile(ms, 99)) if ms else float("nan"),
                "max_ms": max(ms, default=float("nan")),
            }
            for label, ms in self.samples.items()
        }


def _answers(port: int, path: str) -> bool:
    return Prober._probe(port, path)


def server_spec(
    label: str,
    tree: Path,
    model_uri: str,
    tracking_uri: str,
    scratch: Path,
    env: dict[str, str],
) -> tuple[ServerSpec, int]:
    port, ops_port = free_port(), free_port()
    spec = ours_spec(model_uri, tracking_uri, WORKERS, port, scratch)
    spec = replace(spec, name=label, cwd=tree, env=spec.env | {"OPS_PORT": str(ops_port)} | env)
    return spec, ops_port


def measure(
    label: str,
    tree: Path,
    model_uri: str,
    tracking_uri: str,
    scratch: Path,
    args: argparse.Namespace,
    rate: float | None = None,
) -> dict[str, Any]:
    """One server: step test, then the overload at `rate` (default: factor x capacity)."""
    body_file = scratch / f"body-{args.rows}.json"
    body_file.write_bytes(make_body(args.rows))
    extra_env = dict(item.split("=", 1) for item in args.env)
    # The step test runs unbounded: a closed loop whose 503s come back at once would spin.
    spec, ops_port = server_spec(
        label,
        tree,
        model_uri,
        tracking_uri,
        scratch / f"{label}-steps",
        {**extra_env, "MAX_CONCURRENT_REQUESTS": str(UNBOUNDED)},
    )
    print(f"[{label}] starting {spec.describe()} in {tree}", file=sys.stderr)
    with serving(spec, scratch) as server:
        steps = []
        for connections in args.steps:
            step = run_loadgen(
                spec.port, body_file, args.step_seconds, [f"--connections={connections}"]
            )
            steps.append(step)
            print(
                f"[{label}] step {connections:4d} conn: {rate_of(step):8.1f} 200/s, "
                f"p99 {p99_of(step, '200')} ms, 503/s {rate_of(step, '503'):.1f}",
                file=sys.stderr,
            )
    best = max(rate_of(step) for step in steps)
    knee = next(step for step in steps if rate_of(step) >= 0.9 * best)
    capacity = rate_of(knee)
    overload_env = dict(extra_env)
    if args.size_from_steps:
        # Little's law: past the concurrency that reached capacity, admitting more queues.
        overload_env["MAX_CONCURRENT_REQUESTS"] = str(-(-knee["connections"] // WORKERS))
    spec, ops_port = server_spec(
        label, tree, model_uri, tracking_uri, scratch / label, overload_env
    )
    print(f"[{label}] restarting: {spec.describe()}", file=sys.stderr)
    with serving(spec, scratch) as server:
        has_ops = _answers(ops_port, "/livez")
        bounds = ADMISSION_LOG.findall(server.log_path.read_text(errors="replace"))
        bound = overload_env.get("MAX_CONCURRENT_REQUESTS") or (
            f"derived at warm-up: {', '.join(bounds)}, then following the predicts"
            if bounds
            else "default"
        )
        wait_idle(server.pid)
        rss_before = tree_rss_bytes(server.pid)
        if has_ops:
            targets = [(f"ops {path}", ops_port, path) for path in POD_PROBES]
            targets += [(f"main {path}", spec.port, path) for path in MLFLOW_PROBES]
        else:
            targets = [(f"main {path}", spec.port, path) for path in POD_PROBES]
        rate = rate or args.rate or args.factor * capacity
        print(f"[{label}] overload: {rate:.0f} req/s for {args.duration:g} s", file=sys.stderr)
        with Prober(targets) as prober:
            overload = run_loadgen(spec.port, body_file, args.duration, [f"--rate={rate}"])
        wait_idle(server.pid)
        rss_after = tree_rss_bytes(server.pid)
    return {
        "label": label,
        "tree": str(tree),
        "command": spec.describe(),
        "ops_port": has_ops,
        "steps": steps,
        "capacity_per_s": capacity,
        "capacity_connections": knee["connections"],
        "capacity_p99_ms": p99_of(knee, "200"),
        "admission_bound": bound,
        "offered_rate": rate,
        "offered_per_s": overload["sent"] / overload["duration_s"],
        "overload": overload,
        "probes": prober.summary(),
        "rss_before": rss_before,
        "rss_after": rss_after,
    }


def verdicts(run: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(what, figure, met) per target of one run."""
    overload = run["overload"]
    by_status = overload["by_status"]
    other = sum(f["count"] for s, f in by_status.items() if s not in ("200", "503"))
    p503, p200 = p99_of(overload, "503"), p99_of(overload, "200")
    bound_200 = TARGET_200_P99_FACTOR * run["capacity_p99_ms"]
    growth = run["rss_after"] / run["rss_before"] - 1
    pod = {k: v for k, v in run["probes"].items() if k.startswith("ops") or not run["ops_port"]}
    mlflow = {k: v for k, v in run["probes"].items() if run["ops_port"] and k.startswith("main")}
    rows = [
        (
            "only 200 and 503",
            f"{other} other, {overload['errors']} socket errors, {overload['not_sent']} unsent",
            other == 0 and overload["errors"] == 0,
        ),
        (
            f"p99 of 503s <= {TARGET_503_P99_MS:g} ms",
            "no 503" if p503 is None else f"{p503:.1f} ms",
            p503 is not None and p503 <= TARGET_503_P99_MS,
        ),
        (
            f"p99 of 200s <= {TARGET_200_P99_FACTOR:g} x {run['capacity_p99_ms']:.1f} ms",
            "no 200" if p200 is None else f"{p200:.1f} ms",
            p200 is not None and p200 <= bound_200,
        ),
    ]
    for name, probes in (("probes, /metrics", pod), ("main-port /ping, /health", mlflow)):
        if not probes:
            continue
        worst = max(v["p99_ms"] for v in probes.values())
        failed = sum(int(v["failures"]) for v in probes.values())
        rows.append(
            (
                f"{name} p99 <= {TARGET_PROBE_P99_MS:g} ms, 0 failed",
                f"worst p99 {worst:.1f} ms, {failed} failed",
                worst <= TARGET_PROBE_P99_MS and failed == 0,
            )
        )
    rows.append(
        (f"RSS growth <= {TARGET_RSS_GROWTH:.0%}", f"{growth:+.1%}", growth <= TARGET_RSS_GROWTH)
    )
    return rows


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Overload: {args.factor:g}x capacity for {args.duration:g} s, {args.rows}-row bodies, "
        f"2 workers, loopback; load average {' '.join(f'{x:.2f}' for x in _loadavg())}",
    ]
    for run in runs:
        overload = run["overload"]
        counts = {s: f["count"] for s, f in overload["by_status"].items()}
        lines += [
            "",
            f"{run['label']}: {run['tree']}",
            f"  probes served on {'the ops port (master)' if run['ops_port'] else 'PORT only'}",
            "  step test (closed loop): "
            + ", ".join(
                f"{s['connections']}c {rate_of(s):.0f}/s p99 {p99_of(s, '200') or 0:.0f} ms"
                for s in run["steps"]
            ),
            f"  capacity {run['capacity_per_s']:.0f} 200s/s at {run['capacity_connections']} "
            f"connections, p99 {run['capacity_p99_ms']:.1f} ms; overload run with "
            f"admission bound per worker {run['admission_bound']}",
            f"  offered {run['offered_rate']:.0f} req/s ({run['offered_per_s']:.0f} sent/s) over "
            f"up to {overload['connections']} connections; answers {counts}",
        ]
        for status in ("200", "503"):
            figures = overload["by_status"].get(status)
            if figures:
                lines.append(
                    f"  {status}s: {figures['count'] / overload['duration_s']:.0f}/s, "
                    f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                    f"max {figures['max_ms']:.0f} ms"
                )
        for path, figures in run["probes"].items():
            lines.append(
                f"  {path:14s} n={figures['count']:4.0f} p50 {figures['p50_ms']:6.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  max {figures['max_ms']:7.1f} ms  "
                f"failed {figures['failures']:.0f}"
            )
        lines.append(
            f"  RSS {run['rss_before'] / 2**20:.0f} MiB -> {run['rss_after'] / 2**20:.0f} MiB"
        )
        for what, figure, met in verdicts(run):
            lines.append(f"  {'MET    ' if met else 'NOT MET'}  {what}: {figure}")
    return "\n".join(lines)


def _loadavg() -> tuple[float, ...]:
    return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="overload seconds (60)")
    parser.add_argument("--factor", type=float, default=4.0, help="times capacity (4)")
    parser.add_argument("--rate", type=float, help="offer this many requests/s instead")
    parser.add_argument("--rows", type=int, default=1, choices=(1, 100))
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument(
        "--size-from-steps",
        action="store_true",
        help="set MAX_CONCURRENT_REQUESTS to the step test's capacity concurrency per worker",
    )
    parser.add_argument("--baseline-tree", type=Path, help="also measure this checkout, first")
    parser.add_argument("--model-uri", help="an existing model instead of a fresh demo")
    parser.add_argument("--tracking-uri", help="the registry of --model-uri")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as temp:
        scratch = Path(temp)
        if args.model_uri:
            tracking_uri, model_uri = args.tracking_uri or "", args.model_uri
        else:
            print("training the demo model into a temporary registry", file=sys.stderr)
            tracking_uri, model_uri = create_demo_registry(scratch)
        trees = [("after", PROJECT_ROOT)]
        if args.baseline_tree:
            trees.insert(0, ("before", args.baseline_tree.resolve()))
        runs: list[dict[str, Any]] = []
        for label, tree in trees:
            # Both get the first one's offer: the scoring code is the same, so capacities
            # differ only by the machine's noise, and the same offer compares fairly.
            rate = runs[0]["offered_rate"] if runs else None
            runs.append(measure(label, tree, model_uri, tracking_uri, scratch, args, rate))
    text = report(runs, args)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overload.json").write_text(json.dumps({"runs": runs, "report": text}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
