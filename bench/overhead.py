"""What the serving stack itself costs, on models that cost nothing: ours against the HTTP
floor, `mlflow models serve` and the in-process predict.

python -m bench.overhead [--quick] [--rounds N] [--duration S] [--sweep-duration S]
                         [--warmup S] [--repeats N]

Logs identity PyFunc models (predict returns its input; 5, 10, 100, 1,000 and 5,000 double
columns, with signature and input example) into a temporary SQLite registry, then:
1. floor comparison: bench/floor_app.py under Gunicorn with the production worker class,
   our production command and `mlflow models serve`, 2 workers each, on the 5-column
   model with a 1-row body, at 1 and 64 connections;
2. row sweep: the same servers, 1 to 10,000 rows, 1 connection;
3. column sweep: ours and theirs per width, 1 and 100 rows, 1 connection.
Bodies are `dataframe_split` JSON. Prints every target MET / NOT MET; writes
bench/results/overhead.json, overhead-columns.png and overhead-rows.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chart import write_sweep_charts
from bench.compare import RESULTS_DIR, WARMUP_CONNECTIONS, prepare_run, progress, run_cell
from bench.inprocess import InProcessTimer
from bench.load import run_load, wrk_version
from bench.machine import describe_machine
from bench.overhead_report import (
    FLOOR_CONNECTIONS,
    InProcessRound,
    LabelledCheck,
    OverheadResults,
    render,
)
from bench.payloads import FLOOR_COLUMNS, make_split_body, make_wide_frame
from bench.report import CellRun
from bench.servers import (
    PROJECT_ROOT,
    Server,
    floor_spec,
    free_port,
    ours_spec,
    serving_together,
    theirs_spec,
)
from bench.verify import post_json, verify

WORKERS = 2  # as the production default and the table
SWEEP_COLUMNS = (10, 100, 1000, 5000)
COLUMN_SWEEP_ROWS = (1, 100)
ROW_SWEEP_ROWS = (1, 10, 100, 1000, 10_000)
# A c=1 cell lasts long enough for this many answers of its server on its body (timed once
# when the answers are checked), within SWEEP_CELL_LIMIT_S.
SWEEP_CELL_ANSWERS = 4
SWEEP_CELL_LIMIT_S = 20
# The in-process predict of wide frames is slow: this much time per frame and round.
SWEEP_INPROCESS_BUDGET_S = 1.5


class MismatchError(RuntimeError):
    """Ours and theirs disagree on a body: nothing is worth timing."""


def _write_body(scratch: Path, columns: int, rows: int) -> Path:
    path = scratch / f"body-{columns}x{rows}.json"
    path.write_bytes(make_split_body(make_wide_frame(columns, rows)))
    return path


def _check_and_time(
    ours: Server, theirs: Server, bodies: dict[int, Path], model: str
) -> tuple[list[LabelledCheck], dict[tuple[str, int], int]]:
    """Both servers answer each body alike; and each server's cell duration per body, from
    its time for one answer."""
    checks, durations = [], {}
    for rows, body_file in bodies.items():
        body = body_file.read_bytes()
        answer_ms = []
        for server in (ours, theirs):  # once untimed: the first answer pays lazy set-up
            post_json(server.spec.url + "/invocations", body)
            started = time.perf_counter()
            post_json(server.spec.url + "/invocations", body)
            elapsed = time.perf_counter() - started
            answer_ms.append(f"{server.spec.name} {1000 * elapsed:.1f} ms")
            durations[server.spec.name, rows] = min(
                SWEEP_CELL_LIMIT_S, math.ceil(SWEEP_CELL_ANSWERS * elapsed) + 1
            )
        verification = verify(ours.spec.url, theirs.spec.url, body, rows)
        progress(
            f"check {model}, {rows} row(s): {verification.statuses} {verification.detail}; "
            f"one answer: {', '.join(answer_ms)}"
        )
        if not verification.equal:
            raise MismatchError(f"{model}, {rows} row(s): {verification.detail}")
        checks.append(LabelledCheck(model, verification))
    return checks, durations


def _sweep_round(
    wrk: str,
    servers: list[Server],
    bodies: dict[int, Path],
    durations: dict[tuple[str, int], int],
    args: argparse.Namespace,
    round_index: int,
    label: str,
) -> list[CellRun]:
    """One c=1 cell per body and server, servers alternated; warmed up in the first round."""
    runs = []
    order = servers if round_index % 2 == 0 else servers[::-1]
    for rows, body_file in bodies.items():
        for server in order:
            duration = max(args.sweep_duration, durations[server.spec.name, rows])
            if round_index == 0:
                run_load(wrk, server.spec.url + "/invocations", body_file, 1, args.warmup)
            run = run_cell(wrk, server, body_file, rows, 1, duration, round_index)
            runs.append(run)
            progress(
                f"round {round_index + 1}/{args.rounds} {label} {rows:5d} row(s) "
                f"{run.server:6}: p50 {run.load.p50_ms:9.3f} ms, {run.load.requests} answers"
            )
    return runs


def _floor_round(
    wrk: str, servers: list[Server], body_file: Path, args: argparse.Namespace, round_index: int
) -> list[CellRun]:
    runs = []
    order = servers if round_index % 2 == 0 else servers[::-1]
    for server in order:
        run_load(wrk, server.spec.url + "/invocations", body_file, WARMUP_CONNECTIONS, args.warmup)
    for connections in FLOOR_CONNECTIONS:
        for server in order:
            run = run_cell(wrk, server, body_file, 1, connections, args.duration, round_index)
            runs.append(run)
            progress(
                f"round {round_index + 1}/{args.rounds} floor c={connections:2d} "
                f"{run.server:6}: {run.load.requests_per_second:8.1f} req/s, "
                f"p50 {run.load.p50_ms:7.3f} ms, p99 {run.load.p99_ms:8.2f} ms, "
                f"{run.load.errors} errors"
            )
    return runs


def _measure(timer: InProcessTimer, args: argparse.Namespace) -> InProcessRound:
    return timer.measure(args.repeats, SWEEP_INPROCESS_BUDGET_S)


def run_floor_and_rows(
    wrk: str, args: argparse.Namespace, scratch: Path, tracking_uri: str, model_uri: str
) -> tuple[list[LabelledCheck], list[CellRun], list[CellRun], list[InProcessRound], list[str]]:
    """The floor comparison and the row sweep, on one set of servers for the 5-column model."""
    bodies = {rows: _write_body(scratch, FLOOR_COLUMNS, rows) for rows in ROW_SWEEP_ROWS}
    progress("starting the floor, ours and theirs on the 5-column identity model")
    specs = [
        floor_spec(WORKERS, free_port(), scratch),
        ours_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch),
        theirs_spec(model_uri, tracking_uri, WORKERS, free_port(), scratch),
    ]
    with (
        InProcessTimer(
            model_uri,
            tracking_uri,
            scratch,
            PROJECT_ROOT,
            columns=FLOOR_COLUMNS,
            rows=ROW_SWEEP_ROWS,
        ) as timer,
        serving_together(specs, scratch) as (floor, ours, theirs),
    ):
        checks, durations = _check_and_time(ours, theirs, bodies, f"{FLOOR_COLUMNS} columns")
        floor_runs, row_runs, limits = [], [], []
        for round_index in range(args.rounds):
            floor_runs += _floor_round(wrk, [floor, ours, theirs], bodies[1], args, round_index)
            limits.append(_measure(timer, args))
            row_runs += _sweep_round(
                wrk, [ours, theirs], bodies, durations, args, round_index, "rows"
            )
    return checks, floor_runs, row_runs, limits, [spec.describe() for spec in specs]


def run_columns(
    wrk: str, args: argparse.Namespace, scratch: Path, tracking_uri: str, uris: dict[int, str]
) -> tuple[list[LabelledCheck], dict[int, list[CellRun]], dict[int, list[InProcessRound]]]:
    """The column sweep: ours and theirs started afresh for each width."""
    checks: list[LabelledCheck] = []
    runs: dict[int, list[CellRun]] = {}
    limits: dict[int, list[InProcessRound]] = {}
    for columns in SWEEP_COLUMNS:
        bodies = {rows: _write_body(scratch, columns, rows) for rows in COLUMN_SWEEP_ROWS}
        progress(f"starting ours and theirs on the {columns}-column identity model")
        specs = [
            ours_spec(uris[columns], tracking_uri, WORKERS, free_port(), scratch),
            theirs_spec(uris[columns], tracking_uri, WORKERS, free_port(), scratch),
        ]
        with (
            InProcessTimer(
                uris[columns],
                tracking_uri,
                scratch,
                PROJECT_ROOT,
                columns=columns,
                rows=COLUMN_SWEEP_ROWS,
            ) as timer,
            serving_together(specs, scratch) as (ours, theirs),
        ):
            width_checks, durations = _check_and_time(ours, theirs, bodies, f"{columns} columns")
            checks += width_checks
            runs[columns], limits[columns] = [], []
            for round_index in range(args.rounds):
                limits[columns].append(_measure(timer, args))
                runs[columns] += _sweep_round(
                    wrk, [ours, theirs], bodies, durations, args, round_index, f"{columns:4d} cols"
                )
    return checks, runs, limits


def benchmark(
    wrk: str, args: argparse.Namespace, scratch: Path, settings: dict[str, Any]
) -> OverheadResults:
    machine = describe_machine(PROJECT_ROOT, wrk_version(wrk))
    if machine["load_average_at_start"][0] > 0.5 * (machine["cpus"] or 1):
        progress("warning: the machine is busy (see load average); numbers will be noisy")
    progress("logging the identity models into a temporary registry")
    from bench.registry import create_identity_registry  # imports MLflow

    tracking_uri, uris = create_identity_registry(scratch, (FLOOR_COLUMNS, *SWEEP_COLUMNS))
    floor_checks, floor_runs, row_runs, row_limits, commands = run_floor_and_rows(
        wrk, args, scratch, tracking_uri, uris[FLOOR_COLUMNS]
    )
    column_checks, column_runs, column_limits = run_columns(wrk, args, scratch, tracking_uri, uris)
    machine["load_average_at_end"] = os.getloadavg()
    return OverheadResults(
        command=shlex.join([sys.executable, "-m", "bench.overhead", *sys.argv[1:]]),
        settings=settings,
        machine=machine,
        model_uris=uris,
        server_commands={
            "floor": commands[0],
            "ours": commands[1] + "  (the same for every width's model)",
            "theirs": commands[2] + "  (the same for every width's model)",
        },
        verifications=[*floor_checks, *column_checks],
        floor_runs=floor_runs,
        row_runs=row_runs,
        row_inprocess=row_limits,
        column_runs=column_runs,
        column_inprocess=column_limits,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all cells (2)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per floor cell (5)")
    parser.add_argument(
        "--sweep-duration",
        type=int,
        default=2,
        help="least seconds per sweep cell (2); longer where the slowest answer needs it",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up per server and body (1)"
    )
    parser.add_argument(
        "--repeats", type=int, default=200, help="most predict calls per in-process time (200)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in about 4 minutes: 1 round, 2 s floor cells, 1 s sweep cells",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.sweep_duration, args.warmup = 1, 2, 1, 1
        args.repeats = 50
    if min(args.rounds, args.duration, args.sweep_duration, args.warmup, args.repeats) < 1:
        parser.error("--rounds, --duration, --sweep-duration, --warmup, --repeats: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = prepare_run()
    if wrk is None:
        return 2
    settings = {
        "workers": WORKERS,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "sweep_duration_s": args.sweep_duration,
        "warmup_s": args.warmup,
        "inprocess_repeats": args.repeats,
        "floor_columns": FLOOR_COLUMNS,
        "floor_connections": list(FLOOR_CONNECTIONS),
        "sweep_columns": list(SWEEP_COLUMNS),
        "column_sweep_rows": list(COLUMN_SWEEP_ROWS),
        "row_sweep_rows": list(ROW_SWEEP_ROWS),
        "body_format": "dataframe_split",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
            results = benchmark(wrk, args, Path(scratch), settings)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        return 130
    except MismatchError as error:
        print(f"ours and theirs disagree, nothing timed: {error}", file=sys.stderr)
        return 1
    print(render(results))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / "overhead.json"
    json_path.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    charts = write_sweep_charts(results, RESULTS_DIR)
    written = ", ".join(str(path.relative_to(PROJECT_ROOT)) for path in [json_path, *charts])
    print(f"\nWrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
