"""What request tracing costs: the production command with tracing off, on at a 10 %
sampler and on for every request, side by side with wrk; optionally a baseline checkout.

    .venv/bin/python -m bench.tracing_cost [--baseline-tree DIR] [--rounds 2] [--duration 6]

`--baseline-tree` is another checkout (e.g. `git archive REV | tar -x -C DIR`), run with
tracing off, so "off" can be compared with the code before tracing existed. Spans go to a
sink on 127.0.0.1 that answers OTLP/HTTP 200 without decoding: the exporter's own cost
(serialising, posting) is in the figures, a collector's is not. Every server is started
before the first run and loads the same model; cells alternate between servers, and the
order flips every round. Prints, per server and connection count, req/s, p50/p99, and the
server's CPU time per answered request (all its processes, exporter threads included):
on a shared machine the CPU per request moves far less with the neighbours' load than
req/s does. Ratios are to the first server.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.load import find_wrk
from bench.payloads import make_body
from bench.registry import create_demo_registry
from bench.servers import PROJECT_ROOT, free_port, ours_spec, serving
from bench.side_by_side import measure, print_table

CONNECTIONS = (1, 32)
WORKERS = 2


class _Sink(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP export requests and answers 200, as a collector that keeps up."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# Every server admits every connection: the default bound is sized from each server's own
# warm-up, which a busy machine stretches differently, and a shed 503 is no measure of tracing.
ADMIT_ALL = {"MAX_CONCURRENT_REQUESTS": str(max(CONNECTIONS) * 2)}


def _variants(sink: str, baseline: Path | None) -> list[tuple[str, Path, dict[str, str]]]:
    traced = ADMIT_ALL | {"OTEL_EXPORTER_OTLP_ENDPOINT": sink, "OTEL_SERVICE_NAME": "bench"}
    variants: list[tuple[str, Path, dict[str, str]]] = []
    if baseline is not None:
        variants.append(("baseline (off)", baseline, ADMIT_ALL))
    return [
        *variants,
        ("tracing off", PROJECT_ROOT, ADMIT_ALL),
        (
            "tracing on, 10 %",
            PROJECT_ROOT,
            traced
            | {
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            },
        ),
        ("tracing on, 100 %", PROJECT_ROOT, traced | {"OTEL_TRACES_SAMPLER": "always_on"}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, help="also run this checkout, off")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    args = parser.parse_args(argv)
    wrk = find_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as scratch_dir, ExitStack() as stack:
        scratch = Path(scratch_dir)
        tracking_uri, model_uri = create_demo_registry(scratch / "registry")
        body_file = scratch / "body-1.json"
        body_file.write_bytes(make_body(1))
        sink = stack.enter_context(otlp_sink())
        servers = []
        for label, tree, env in _variants(sink, args.baseline_tree):
            spec = ours_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch)
            spec = replace(spec, name=label.split()[0], cwd=tree, env=spec.env | env)
            servers.append((label, stack.enter_context(serving(spec, scratch))))
            print(f"{label}: {spec.describe()} {' '.join(f'{k}={v}' for k, v in env.items())}")
        results = measure(servers, CONNECTIONS, args.rounds, args.duration, body_file, wrk)
        print_table(results, [label for label, _ in servers], CONNECTIONS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
