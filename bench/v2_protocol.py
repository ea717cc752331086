"""The Open Inference Protocol (V2) against MLflow's protocol, on one server, side by side.

    .venv/bin/python -m bench.v2_protocol [--quick] [--rounds 2] [--duration 6]

The demo model trained into a temporary SQLite registry and served by the production
command (2 workers). The same applicants are sent as MLflow's `dataframe_split` JSON to
/invocations and as V2 JSON (one tensor per column, as MLServer's clients send it) to
/v2/models/{name}/infer; both must answer the same predictions before anything is timed.
Then wrk drives 1-row and 100-row bodies at 1 and 32 connections, the two protocols
alternated cell by cell, the order flipped every round. Printed: req/s, p50 and p99, the
server's CPU per request (all its processes), and V2's ratio to MLflow's protocol for each.
On a shared machine the rates move with the neighbours' load: read the CPU per request.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.load import find_wrk
from bench.payloads import make_frame, make_split_body
from bench.peers.formats import mlflow_rows, v2_body, v2_rows
from bench.registry import create_demo_registry
from bench.servers import free_port, ours_spec, serving
from bench.side_by_side import measure, print_table
from bench.verify import post_json

CONNECTIONS = (1, 32)
BODY_ROWS = (1, 100)
WORKERS = 2
MLFLOW, V2 = "mlflow json", "v2 json"
# Every request is admitted: a shed 503 is no measure of a protocol.
ADMIT_ALL = {"MAX_CONCURRENT_REQUESTS": str(max(CONNECTIONS) * 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s cells")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    args = parser.parse_args(argv)
    rounds, duration = (1, 3) if args.quick else (args.rounds, args.duration)
    wrk = find_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-v2-") as scratch_dir:
        scratch = Path(scratch_dir)
        tracking_uri, model_uri = create_demo_registry(scratch / "registry")
        name, version = model_uri.removeprefix("models:/").split("/")
        spec = ours_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch)
        spec = replace(spec, env=spec.env | ADMIT_ALL)
        print(f"server: {spec.describe()}")
        with serving(spec, scratch) as server:
            for rows in BODY_ROWS:
                frame = make_frame(rows)
                requests = {
                    MLFLOW: ("/invocations", scratch / f"mlflow-{rows}.json"),
                    V2: (
                        f"/v2/models/{name}/versions/{version}/infer",
                        scratch / f"v2-{rows}.json",
                    ),
                }
                requests[MLFLOW][1].write_bytes(make_split_body(frame))
                requests[V2][1].write_bytes(v2_body(frame))
                _check_same_answers(server.spec.url, requests)
                print(f"\n{rows} row(s) per request, {rounds} round(s) of {duration} s cells")
                results = measure(
                    [(MLFLOW, server), (V2, server)],
                    CONNECTIONS,
                    rounds,
                    duration,
                    requests[MLFLOW][1],
                    wrk,
                    requests,
                )
                print_table(results, [MLFLOW, V2], CONNECTIONS)
    return 0


def _check_same_answers(url: str, requests: dict[str, tuple[str, Path]]) -> None:
    """Both protocols answer the same predictions, or nothing is timed."""
    answers = {}
    for label, (path, body) in requests.items():
        status, answer = post_json(url + path, body.read_bytes())
        if status != 200:
            raise SystemExit(f"{label} answered {status}: {answer[:300]!r}")
        answers[label] = answer
    if mlflow_rows(answers[MLFLOW]) != v2_rows(answers[V2]):
        raise SystemExit("the two protocols answered different predictions")


if __name__ == "__main__":
    raise SystemExit(main())
