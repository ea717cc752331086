"""Where our workers spend their time under load: py-spy on one worker while wrk drives it.

python -m bench.hotspots --py-spy /tmp/pyspy/bin/py-spy [--rows 1] [--connections 64]
                        [--seconds 10] [--native] [--model-uri URI --tracking-uri URI]

py-spy is not a project dependency; give it its own venv:
`python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`. By default only the
thread holding the GIL is sampled, which is what costs interpreter time; --native samples
every thread with C frames (idle pool threads waiting on a lock show up as libc).
Writes the raw stacks to bench/results/profile-<rows>rows-c<connections>.txt and prints
the frames with the largest self and inclusive shares.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.load import find_wrk, run_load, wrk_command
from bench.payloads import make_body
from bench.proctree import cpu_seconds, list_tree
from bench.servers import free_port, ours_spec, serving

RESULTS_DIR = Path(__file__).with_name("results")
_SITE_PACKAGES = re.compile(r"\(\S*/site-packages/")


def busiest_worker(root: int, window_s: float = 1.0) -> int:
    """The worker using the most CPU now: at low concurrency one worker gets all the load."""
    workers = list_tree(root)[1:]
    before = {pid: cpu_seconds(pid) for pid in workers}
    time.sleep(window_s)
    return max(workers, key=lambda pid: cpu_seconds(pid) - before[pid])


def summarise(raw: Path, top: int) -> str:
    """Self and inclusive shares of the frames in py-spy's raw (collapsed) output."""
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_SITE_PACKAGES.sub("(", frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    if not total:
        return "no samples: the worker was idle"
    lines = [f"{total} samples", "", "self:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hotspots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--rows", type=int, choices=(1, 100), default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10, help="sampling time (10)")
    parser.add_argument("--native", action="store_true", help="all threads, with C frames")
    parser.add_argument("--top", type=int, default=40, help="frames to print per list (40)")
    parser.add_argument("--model-uri", help="profile this model instead of training the demo")
    parser.add_argument("--tracking-uri", help="registry of --model-uri")
    args = parser.parse_args()
    if args.model_uri and not args.tracking_uri:
        parser.error("--model-uri needs --tracking-uri")
    wrk = find_wrk()
    RESULTS_DIR.mkdir(exist_ok=True)
    raw = RESULTS_DIR / f"profile-{args.rows}rows-c{args.connections}.txt"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as temporary:
        scratch = Path(temporary)
        if args.model_uri:
            model_uri, tracking_uri = args.model_uri, args.tracking_uri
        else:
            from bench.registry import create_demo_registry  # imports MLflow and XGBoost

            tracking_uri, model_uri = create_demo_registry(scratch)
        body = scratch / "body.json"
        body.write_bytes(make_body(args.rows))
        spec = ours_spec(model_uri, tracking_uri, 2, free_port(), scratch)
        with serving(spec, scratch) as server:
            url = spec.url + "/invocations"
            run_load(wrk, url, body, 8, 2)  # warm-up
            load = subprocess.Popen(
                wrk_command(wrk, url, args.connections, args.seconds + 5),
                env={"BENCH_BODY_FILE": str(body)},
                stdout=subprocess.DEVNULL,
            )
            try:
                time.sleep(1)  # let the load settle before sampling
                worker = busiest_worker(server.pid)
                sampler = [args.py_spy, "record", "--pid", str(worker)]
                sampler += ["--duration", str(args.seconds), "--rate", "200"]
                sampler += ["--format", "raw", "--output", str(raw)]
                sampler += ["--native"] if args.native else ["--gil", "--nonblocking"]
                subprocess.run(sampler, check=True, timeout=args.seconds + 60)
            finally:
                load.kill()
                load.wait()
    print(summarise(raw, args.top))
    print(f"\nraw stacks: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
