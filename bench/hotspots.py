"""Where our workers spend their time under load: py-spy on one worker while wrk drives it.

python -m bench.hotspots [--model demo|identity] [--columns 5] [--rows 1] [--connections 64]
                        [--seconds 10] [--sampling cpu|gil|native] [--py-spy PATH]
                        [--model-uri URI --tracking-uri URI]

py-spy is pinned in requirements-dev.txt (it needs ptrace on the worker: root, or
kernel.yama.ptrace_scope 0). By default every thread is sampled while it is on a CPU, so
the shares are of CPU time, the event loop's and the predict thread's together;
`--sampling native` adds C frames and idle threads (pool threads waiting on a lock show up
as libc). `--model identity` serves the overhead bench's identity model (bench.overhead),
where every sample is the server's own cost. Writes the raw (collapsed) stacks, which
speedscope and flamegraph.pl read, to
bench/results/profile-<model>-<rows>rows-c<connections>.txt (identity5, identity1000...)
and prints the frames with the largest self and inclusive shares, by package, and the
project's own frames.
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
from bench.payloads import FLOOR_COLUMNS, make_body, make_split_body, make_wide_frame
from bench.proctree import cpu_seconds, list_tree
from bench.servers import VENV_BIN, free_port, ours_spec, serving

RESULTS_DIR = Path(__file__).with_name("results")
_SITE_PACKAGES = re.compile(r"\(\S*/site-packages/")
# Innermost frames that mean "waiting": the loop's thread in epoll (uvloop's C code under
# Runner.run), a pool thread blocked on its queue or condition.
_IDLE_LEAF = re.compile(
    r"^(Runner\.run \(asyncio/runners\.py|Condition\.wait |_worker \(concurrent/futures/"
    r"|epoll_|PyThread_acquire_lock|select )"
)
# Frames around everything (Gunicorn's arbiter and worker start, thread bootstrap).
_SCAFFOLDING = re.compile(
    r"\((gunicorn[/:]|gunicorn/|uvicorn_worker/|uvicorn/_compat\.py|asyncio/runners\.py|"
    r"threading\.py|\S*/threading\.py)"
)
_PROJECT = frozenset({"app", "model_fetch", "model_wrapper"})
# py-spy leaves threads the OS reports idle out by default. --gil keeps the thread that last
# held the GIL, which in an event loop waiting on epoll is still the loop's thread: its
# idle time then shows up under whatever it did last (a socket write, say).
_SAMPLING_FLAGS = {"cpu": [], "gil": ["--gil", "--nonblocking"], "native": ["--native"]}


def busiest_worker(root: int, window_s: float = 1.0) -> int:
    """The worker using the most CPU now: at low concurrency one worker gets all the load."""
    workers = list_tree(root)[1:]
    before = {pid: cpu_seconds(pid) for pid in workers}
    time.sleep(window_s)
    return max(workers, key=lambda pid: cpu_seconds(pid) - before[pid])


def _package(frame: str) -> str:
    """The package or module a frame is in: `fastapi` for `APIRouter.handle
    (fastapi/routing.py:3015)`, `uuid` for `uuid4 (uuid.py:723)`, the library of a C frame."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/")[0].partition(":")[0].removesuffix(".py") or "?"


def summarise(raw: Path, top: int) -> str:
    """Self and inclusive shares of the busy samples in py-spy's raw (collapsed) output.

    Samples whose innermost frame is a wait (the event loop in epoll, a pool thread on its
    queue) are counted apart: what is left is where the worker's CPU time goes.
    """
    total, idle = 0, 0
    own, inclusive, packages = Counter[str](), Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_SITE_PACKAGES.sub("(", frame) for frame in stack.split(";")]
        total += count
        if _IDLE_LEAF.search(frames[-1]):
            idle += count
            continue
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if not _SCAFFOLDING.search(frame):
                inclusive[frame] += count
    busy = total - idle
    if not busy:
        return "no busy samples: the worker was idle"
    lines = [f"{total} samples, {idle} waiting (left out), {busy} busy; shares of busy", ""]
    lines += ["self, by package:"]
    lines += [f"  {count / busy:6.1%}  {name}" for name, count in packages.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {count / busy:6.1%}  {frame}" for frame, count in own.most_common(top)]
    lines += ["", "inclusive (process and thread start-up frames left out):"]
    lines += [f"  {count / busy:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    ours = Counter({frame: n for frame, n in inclusive.items() if _package(frame) in _PROJECT})
    lines += ["", "inclusive, the project's own frames:"]
    lines += [f"  {count / busy:6.1%}  {frame}" for frame, count in ours.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hotspots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--py-spy", default=str(VENV_BIN / "py-spy"), help="the py-spy executable (the venv's)"
    )
    parser.add_argument(
        "--model",
        choices=("demo", "identity"),
        default="demo",
        help="the demo model (default) or an identity model (--columns wide), trained or logged "
        "into a temporary registry",
    )
    parser.add_argument("--rows", type=int, choices=(1, 100), default=1)
    parser.add_argument(
        "--columns",
        type=int,
        default=FLOOR_COLUMNS,
        help=f"width of the identity model, double columns ({FLOOR_COLUMNS})",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10, help="sampling time (10)")
    parser.add_argument(
        "--sampling",
        choices=tuple(_SAMPLING_FLAGS),
        default="cpu",
        help="cpu (default): every thread while it runs on a CPU; gil: the thread holding "
        "the GIL; native: every thread, idle ones too, with C frames",
    )
    parser.add_argument("--top", type=int, default=40, help="frames to print per list (40)")
    parser.add_argument("--model-uri", help="profile this model instead of training the demo")
    parser.add_argument("--tracking-uri", help="registry of --model-uri")
    args = parser.parse_args()
    if args.model_uri and not args.tracking_uri:
        parser.error("--model-uri needs --tracking-uri")
    wrk = find_wrk()
    RESULTS_DIR.mkdir(exist_ok=True)
    label = "custom" if args.model_uri else args.model
    if args.model == "identity" and not args.model_uri:
        label += f"{args.columns}"
    raw = RESULTS_DIR / f"profile-{label}-{args.rows}rows-c{args.connections}.txt"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as temporary:
        scratch = Path(temporary)
        body = scratch / "body.json"
        if args.model_uri:
            model_uri, tracking_uri = args.model_uri, args.tracking_uri
            body.write_bytes(make_body(args.rows))
        elif args.model == "identity":
            from bench.registry import create_identity_registry  # imports MLflow

            tracking_uri, uris = create_identity_registry(scratch, [args.columns])
            model_uri = uris[args.columns]
            body.write_bytes(make_split_body(make_wide_frame(args.columns, args.rows)))
        else:
            from bench.registry import create_demo_registry  # imports MLflow and XGBoost

            tracking_uri, model_uri = create_demo_registry(scratch)
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
                sampler += _SAMPLING_FLAGS[args.sampling]
                subprocess.run(sampler, check=True, timeout=args.seconds + 60)
            finally:
                load.kill()
                load.wait()
    print(summarise(raw, args.top))
    print(f"\nraw stacks: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
