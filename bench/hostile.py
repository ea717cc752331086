"""What hostile bodies cost the production command: status, time, worker RSS growth, probes.

    .venv/bin/python -m bench.hostile        # trains the demo model first (~30 s)
    .venv/bin/python -m bench.hostile --model-uri models:/NAME/1 --tracking-uri sqlite:///...

Starts `gunicorn --config python:app.gunicorn_conf "app.main:create_app()"` with 2
workers (`--workers 1`: /livez then always reaches the busy worker) on 127.0.0.1 and
sends each shape of bench.hostile_bodies once, while another connection polls /livez.
Per shape it prints the status, the time to the answer, the largest peak-RSS growth of
any worker (peaks reset before each shape through /proc/PID/clear_refs), the slowest
/livez answer meanwhile, and whether a worker died.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.hostile_bodies import HostileBody, gzip_members_body, hostile_bodies
from bench.proctree import list_tree
from bench.registry import create_demo_registry
from bench.servers import HOST, free_port, ours_spec, serving

CLIENT_TIMEOUT_S = 90.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    name: str
    status: int | str
    seconds: float
    rss_growth_mib: float
    livez_max_s: float
    worker_lost: bool


def post(port: int, body: HostileBody) -> tuple[int | str, bytes]:
    """Status and body, or the name of the error when no answer came."""
    connection = http.client.HTTPConnection(HOST, port, timeout=CLIENT_TIMEOUT_S)
    try:
        connection.putrequest("POST", "/invocations")
        connection.putheader("Content-Type", body.content_type)
        connection.putheader("Content-Length", str(len(body.body)))
        for name, value in body.headers:
            connection.putheader(name, value)
        connection.endheaders(body.body)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__, b""
    finally:
        connection.close()


def workers(master: int) -> list[int]:
    return [pid for pid in list_tree(master) if pid != master]


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peaks(pids: list[int]) -> dict[int, int]:
    """Reset each worker's peak RSS (proc(5): clear_refs 5) and return its RSS now, KiB."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    return {pid: _status_kib(pid, "VmRSS") for pid in pids}


def poll_livez(port: int, done: threading.Event) -> float:
    slowest = 0.0
    while not done.is_set():
        started = time.perf_counter()
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            connection.request("GET", "/livez")
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        slowest = max(slowest, time.perf_counter() - started)
        done.wait(0.1)
    return slowest


def measure(port: int, pids: list[int], body: HostileBody) -> Measured:
    """Send `body` once to the server on `port` whose workers are `pids`."""
    before = reset_peaks(pids)
    done = threading.Event()
    livez: list[float] = []
    poller = threading.Thread(target=lambda: livez.append(poll_livez(port, done)))
    poller.start()
    started = time.perf_counter()
    status, _ = post(port, body)
    seconds = time.perf_counter() - started
    done.set()
    poller.join()
    growth = max((_status_kib(pid, "VmHWM") - rss for pid, rss in before.items()), default=0)
    lost = any(_status_kib(pid, "VmRSS") == 0 for pid in pids)
    return Measured(body.name, status, seconds, growth / 1024, livez[0], lost)


def run(model_uri: str, tracking_uri: str, scratch: Path, worker_count: int) -> list[Measured]:
    spec = ours_spec(model_uri, tracking_uri, worker_count, free_port(), scratch)
    results = []
    with serving(spec, scratch) as server:
        for body in [*hostile_bodies(), gzip_members_body()]:
            results.append(measure(spec.port, workers(server.pid), body))
            print(row(results[-1]), flush=True)
        log = server.log_path.read_text(errors="replace")
    print(f"WORKER TIMEOUT lines in the log: {log.count('WORKER TIMEOUT')}")
    return results


def row(result: Measured) -> str:
    return (
        f"| {result.name} | {result.status} | {result.seconds:.2f} s | "
        f"{result.rss_growth_mib:.0f} MiB | {result.livez_max_s:.2f} s | "
        f"{'yes' if result.worker_lost else 'no'} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--model-uri", help="an existing model; default: train the demo")
    parser.add_argument("--tracking-uri", help="the registry holding --model-uri")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="1 makes /livez reach the worker holding the body (2: the production default)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as scratch_dir:
        scratch = Path(scratch_dir)
        if args.model_uri:
            model_uri, tracking_uri = args.model_uri, args.tracking_uri or ""
        else:
            tracking_uri, model_uri = create_demo_registry(scratch)
        print("| shape | status | time | worker RSS growth | slowest /livez | worker lost |")
        print("| --- | --- | --- | --- | --- | --- |")
        run(model_uri, tracking_uri, scratch, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
