"""Benchmark our server against every serving peer on the same models, in one run.

python -m bench.peers [--quick] [--rounds N] [--duration S] [--warmup S]
                      [--models demo,identity] [--peers ours,mlflow,...]

Trains the demo model and logs a 5-column identity model into a temporary SQLite registry,
exports both to local directories, and for each model starts every peer with 2 workers
(ours, `mlflow models serve`, MLServer without and with adaptive batching, BentoML,
KServe), each in its own virtualenv (`make bench-peers` builds them). Every peer gets the
same rows in the format its clients send and must answer our predictions before anything
is timed. Then wrk drives 1 row at 1 and 64 connections and 100 rows at 8 connections,
peers alternated cell by cell, the order rotating every round. A peer that cannot be
installed, started or that answers differently is reported with the reason. Prints a
Markdown report; writes bench/results/peers-latest.json and peers.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.compare import RESULTS_DIR, WARMUP_CONNECTIONS, prepare_run, progress, run_cell
from bench.load import run_load, wrk_version
from bench.machine import describe_machine
from bench.payloads import FLOOR_COLUMNS, make_frame, make_wide_frame
from bench.peers.chart import write_peers_chart
from bench.peers.report import (
    CELLS,
    DEMO,
    IDENTITY,
    ModelRun,
    PeerInfo,
    PeerResults,
    load_results,
    render,
)
from bench.peers.specs import PEERS, Peer, PeerUnavailableError, Placement, versions
from bench.proctree import memory, wait_idle
from bench.report import CellRun, MemorySample
from bench.servers import OURS, PROJECT_ROOT, Server, ServerSpec, serving_each
from bench.verify import Verification, post_json, verify_rows

WORKERS = 2
BODY_ROWS = sorted({rows for rows, _ in CELLS})
RESULTS_JSON = RESULTS_DIR / "peers-latest.json"
# The report as printed: docs/peers.md includes it (docs/hooks/bench_charts.py).
RESULTS_REPORT = RESULTS_DIR / "peers-latest.md"
RESULTS_CHART = RESULTS_DIR / "peers.png"


def _frame(model: str, rows: int) -> pd.DataFrame:
    return make_frame(rows) if model == DEMO else make_wide_frame(FLOOR_COLUMNS, rows)


def create_models(scratch: Path, models: list[str]) -> dict[str, tuple[str, str, Path]]:
    """Each model registered (tracking URI, model URI) and exported to a directory."""
    import mlflow  # heavy: only once the run starts

    from bench.registry import create_demo_registry, create_identity_registry

    created = {}
    for model in models:
        progress(f"registering the {model} model")
        root = scratch / f"registry-{model}"
        if model == DEMO:
            tracking_uri, model_uri = create_demo_registry(root)
        else:
            tracking_uri, uris = create_identity_registry(root, [FLOOR_COLUMNS])
            model_uri = uris[FLOOR_COLUMNS]
        mlflow.set_tracking_uri(tracking_uri)
        directory = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(scratch / f"export-{model}")
            )
        )
        created[model] = (tracking_uri, model_uri, directory)
    return created


def _verify(
    peer: Peer, server: Server, bodies: dict[int, Path], ours: dict[int, list[dict[str, Any]]]
) -> list[Verification]:
    checks = []
    for rows, body in bodies.items():
        status, answer = post_json(server.spec.url + peer.path, body.read_bytes())
        checks.append(verify_rows(rows, ours[rows], peer.name, status, answer, peer.rows))
    return checks


def _drive(
    wrk: str,
    servers: list[tuple[Peer, Server]],
    bodies: dict[str, dict[int, Path]],
    args: argparse.Namespace,
    model: str,
) -> list[CellRun]:
    """Every cell for every peer, peers alternated cell by cell; the order rotates each
    round so that no peer always follows the same one."""
    runs = []
    for round_index in range(args.rounds):
        shift = round_index % len(servers)
        order = servers[shift:] + servers[:shift]
        for rows, connections in CELLS:
            for peer, server in order:
                run = run_cell(
                    wrk,
                    server,
                    bodies[peer.name][rows],
                    rows,
                    connections,
                    args.duration,
                    round_index,
                    path=peer.path,
                )
                runs.append(run)
                progress(
                    f"{model} round {round_index + 1}/{args.rounds} {rows:3d} row(s) "
                    f"c={connections:2d} {peer.name:17}: "
                    f"{run.load.requests_per_second:8.1f} req/s, p50 {run.load.p50_ms:7.2f} "
                    f"ms, p99 {run.load.p99_ms:8.2f} ms, {run.load.errors} errors"
                )
    return runs


def _place(
    peers: list[Peer], model: str, created: tuple[str, str, Path], scratch: Path
) -> tuple[list[tuple[Peer, ServerSpec]], dict[str, str]]:
    tracking_uri, model_uri, directory = created
    placed, unavailable = [], {}
    for peer in peers:
        own = scratch / f"{model}-{peer.name}"
        own.mkdir(parents=True)
        try:
            peer.check_installed()
            spec = peer.spec(Placement(model_uri, tracking_uri, directory, WORKERS, own))
        except PeerUnavailableError as error:
            unavailable[peer.name] = str(error)
            progress(f"{model}: {peer.name} not measured: {error}")
            continue
        placed.append((peer, spec))
    return placed, unavailable


def bench_model(
    wrk: str,
    peers: list[Peer],
    model: str,
    created: tuple[str, str, Path],
    scratch: Path,
    args: argparse.Namespace,
) -> ModelRun:
    """Start every peer on one model together, check, warm up, sample memory, time."""
    placed, unavailable = _place(peers, model, created, scratch)
    bodies: dict[str, dict[int, Path]] = {}
    for peer, _ in placed:
        bodies[peer.name] = {}
        for rows in BODY_ROWS:
            path = scratch / f"body-{model}-{peer.name}-{rows}.json"
            path.write_bytes(peer.body(_frame(model, rows)))
            bodies[peer.name][rows] = path
    progress(f"{model}: starting {', '.join(peer.name for peer, _ in placed)}")
    others = [spec for peer, spec in placed if peer.name != OURS]
    ours_specs = [spec for peer, spec in placed if peer.name == OURS]
    by_name = {peer.name: peer for peer, _ in placed}
    # Ours starts once the others are up and idle: its warm-up measures the predict time
    # its admission bound derives from, which the others' model loading would inflate.
    with (
        serving_each(others, scratch) as (others_ready, others_failed),
        serving_each(ours_specs, scratch) as (ours_ready, ours_failed),
    ):
        failed = others_failed | ours_failed
        unavailable |= {name: f"did not start: {reason}" for name, reason in failed.items()}
        servers = [(by_name[server.spec.name], server) for server in ours_ready + others_ready]
        ours = next((server for peer, server in servers if peer.name == OURS), None)
        if ours is None:
            raise SystemExit(f"{model}: our server did not start: {unavailable.get(OURS)}")
        ours_peer = by_name[OURS]
        ours_rows = {}
        for rows, body in bodies[OURS].items():
            status, answer = post_json(ours.spec.url + ours_peer.path, body.read_bytes())
            if status != 200:
                raise SystemExit(f"{model}: our server answered {status}: {answer[:300]!r}")
            ours_rows[rows] = ours_peer.rows(answer)
        verifications, agreeing = {}, [(ours_peer, ours)]
        for peer, server in servers:
            if peer.name == OURS:  # the reference the others are compared with
                continue
            checks = _verify(peer, server, bodies[peer.name], ours_rows)
            verifications[peer.name] = checks
            for check in checks:
                progress(f"{model} check {peer.name} {check.rows} row(s): {check.detail}")
            if all(check.equal for check in checks):
                agreeing.append((peer, server))
            else:
                failure = next(check for check in checks if not check.equal)
                unavailable[peer.name] = f"answers differ from ours: {failure.detail}"
        progress(f"{model}: warming up")
        for peer, server in agreeing:
            for body in bodies[peer.name].values():
                run_load(wrk, server.spec.url + peer.path, body, WARMUP_CONNECTIONS, args.warmup)
        samples = []
        for peer, server in agreeing:
            wait_idle(server.pid)
            samples.append(MemorySample(peer.name, WORKERS, "after warm-up", memory(server.pid)))
        runs = _drive(wrk, agreeing, bodies, args, model)
        commands = {peer.name: server.spec.describe() for peer, server in servers}
    return ModelRun(
        model=model,
        model_uri=created[1],
        commands=commands,
        verifications=verifications,
        unavailable=unavailable,
        runs=runs,
        memory=samples,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all cells (2)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per cell (5)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per body (2)")
    parser.add_argument(
        "--models", default=f"{DEMO},{IDENTITY}", help=f"of {DEMO},{IDENTITY} (both)"
    )
    names = ",".join(peer.name for peer in PEERS)
    parser.add_argument("--peers", default=names, help=f"of {names} (all; ours always)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round of 2 s cells, 1 s warm-up"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: the report, its Markdown and chart again from a results JSON",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2, 1
    if min(args.rounds, args.duration, args.warmup) < 1:
        parser.error("--rounds, --duration and --warmup must be at least 1")
    args.models = args.models.split(",")
    if set(args.models) - {DEMO, IDENTITY}:
        parser.error(f"--models: {DEMO} and/or {IDENTITY}")
    wanted = set(args.peers.split(",")) | {OURS}
    if wanted - {peer.name for peer in PEERS}:
        parser.error(f"--peers: of {names}")
    args.peers = [peer for peer in PEERS if peer.name in wanted]
    return args


def write_results(results: PeerResults) -> None:
    report = render(results)
    print(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    RESULTS_REPORT.write_text(report + "\n")
    write_peers_chart(results, RESULTS_CHART)
    written = [
        path.relative_to(PROJECT_ROOT) for path in (RESULTS_JSON, RESULTS_REPORT, RESULTS_CHART)
    ]
    print(f"\nWrote {', '.join(map(str, written))}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        write_results(load_results(json.loads(args.render.read_text())))
        return 0
    wrk = prepare_run()
    if wrk is None:
        return 2
    command = shlex.join(["python", "-m", "bench.peers", *sys.argv[1:]])
    settings = {
        "workers": WORKERS,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "cells": [list(cell) for cell in CELLS],
    }
    machine = describe_machine(PROJECT_ROOT, wrk_version(wrk))
    peers = [
        PeerInfo(peer.name, peer.label, peer.protocol, versions(peer.venv)) for peer in args.peers
    ]
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch:
            created = create_models(Path(scratch), args.models)
            models = [
                bench_model(wrk, args.peers, model, created[model], Path(scratch), args)
                for model in args.models
            ]
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        return 130
    machine["load_average_at_end"] = os.getloadavg()
    settings["wall_time_s"] = round(time.monotonic() - started)
    write_results(PeerResults(command, settings, machine, peers, models))
    return 0
