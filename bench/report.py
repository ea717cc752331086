"""From raw runs to medians per cell, the issue's targets, and the printed table."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load import LoadResult
from bench.machine import machine_lines
from bench.proctree import ProcessMemory
from bench.servers import OURS, THEIRS
from bench.verify import Verification

MIB = 2**20
# When memory was sampled: idle after a short warm-up, or right after the timed runs.
IDLE = "idle after warm-up"
AFTER_RUNS = "after the runs"


@dataclass(frozen=True)
class CellRun:
    """One server driven with one body at one concurrency, in one round."""

    server: str
    rows: int
    connections: int
    round: int
    load: LoadResult
    cpu_seconds: float  # of the server's whole process tree during the run

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.load.requests if self.load.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "rows": self.rows,
            "connections": self.connections,
            "round": self.round,
            **self.load.as_dict(),
            "cpu_seconds": self.cpu_seconds,
            "cpu_ms_per_request": self.cpu_ms_per_request,
        }


@dataclass(frozen=True)
class CellSummary:
    """Medians over rounds; errors and requests summed."""

    server: str
    rows: int
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    errors: int
    requests: int
    # The spread over rounds, to judge how much the machine moved the median.
    requests_per_second_min: float
    requests_per_second_max: float


@dataclass(frozen=True)
class MemorySample:
    server: str
    workers: int
    when: str
    processes: list[ProcessMemory] = field(default_factory=list)

    @property
    def total_pss_bytes(self) -> int:
        return sum(process.pss_bytes for process in self.processes)


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool | None  # None: the run did not measure it


@dataclass(frozen=True)
class Results:
    command: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    model_uri: str
    server_commands: dict[str, str]
    verifications: list[Verification]
    # per round: {"wall"|"cpu"|"served_wall": {rows: seconds}}
    inprocess: list[dict[str, dict[int, float]]]
    runs: list[CellRun]
    memory: list[MemorySample]
    summaries: list[CellSummary] = field(init=False)
    targets: list[Target] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summaries", summarise(self.runs))
        object.__setattr__(self, "targets", evaluate_targets(self))

    def inprocess_median(self, kind: str) -> dict[int, float]:
        """Median over rounds of the in-process predict seconds, per body size."""
        rows = sorted({rows for limit in self.inprocess for rows in limit[kind]})
        return {n: statistics.median(limit[kind][n] for limit in self.inprocess) for n in rows}

    def cell(self, server: str, rows: int, connections: int) -> CellSummary | None:
        for summary in self.summaries:
            if (summary.server, summary.rows, summary.connections) == (server, rows, connections):
                return summary
        return None

    def memory_sample(self, server: str, workers: int, when: str) -> MemorySample | None:
        for sample in self.memory:
            if (sample.server, sample.workers, sample.when) == (server, workers, when):
                return sample
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "settings": self.settings,
            "machine": self.machine,
            "model_uri": self.model_uri,
            "server_commands": self.server_commands,
            "verifications": [asdict(item) for item in self.verifications],
            "inprocess_predict_ms": {
                kind: {str(rows): 1000 * s for rows, s in self.inprocess_median(kind).items()}
                for kind in ("wall", "cpu", "served_wall")
            },
            "inprocess_predict_ms_per_round": [
                {
                    kind: {str(rows): 1000 * s for rows, s in values.items()}
                    for kind, values in limit.items()
                }
                for limit in self.inprocess
            ],
            "cells": [asdict(summary) for summary in self.summaries],
            "ratios": [_ratios(self, rows, connections) for rows, connections in _cells(self)],
            "memory": [
                {**asdict(sample), "total_pss_bytes": sample.total_pss_bytes}
                for sample in self.memory
            ],
            "targets": [asdict(target) for target in self.targets],
            "runs": [run.as_dict() for run in self.runs],
        }


def summarise(runs: list[CellRun]) -> list[CellSummary]:
    groups: dict[tuple[str, int, int], list[CellRun]] = {}
    for run in runs:
        groups.setdefault((run.server, run.rows, run.connections), []).append(run)
    return [
        CellSummary(
            server=server,
            rows=rows,
            connections=connections,
            requests_per_second=statistics.median(r.load.requests_per_second for r in group),
            p50_ms=statistics.median(r.load.p50_ms for r in group),
            p99_ms=statistics.median(r.load.p99_ms for r in group),
            cpu_ms_per_request=statistics.median(r.cpu_ms_per_request for r in group),
            errors=sum(r.load.errors for r in group),
            requests=sum(r.load.requests for r in group),
            requests_per_second_min=min(r.load.requests_per_second for r in group),
            requests_per_second_max=max(r.load.requests_per_second for r in group),
        )
        for (server, rows, connections), group in groups.items()
    ]


def _cells(results: Results) -> list[tuple[int, int]]:
    return sorted({(summary.rows, summary.connections) for summary in results.summaries})


def _ratio(ours: float, theirs: float) -> float | None:
    return ours / theirs if theirs else None


def _ratios(results: Results, rows: int, connections: int) -> dict[str, Any]:
    ours, theirs = results.cell(OURS, rows, connections), results.cell(THEIRS, rows, connections)
    ratios: dict[str, Any] = {"rows": rows, "connections": connections}
    for name in ("requests_per_second", "p50_ms", "p99_ms", "cpu_ms_per_request"):
        ratios[name] = (
            _ratio(getattr(ours, name), getattr(theirs, name)) if ours and theirs else None
        )
    return ratios


def evaluate_targets(results: Results) -> list[Target]:
    """The issue's targets, on this machine, with 2 workers each and medians over rounds."""
    return [
        _throughput_target(results, rows=1, connections=64, factor=10),
        _p99_target(results, rows=1, connections=64, share=0.2),
        _throughput_target(results, rows=100, connections=8, factor=3),
        _overhead_target(results, limit_ms=1.5),
        _memory_target(results, limit=1.25),
        _served_overhead_target(results, limit_ms=0.5),
    ]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _cell_name(rows: int, connections: int) -> str:
    return f"{_plural(rows, 'row')}, {_plural(connections, 'connection')}"


def _throughput_target(results: Results, *, rows: int, connections: int, factor: float) -> Target:
    goal = f"{_cell_name(rows, connections)}: req/s >= {factor:g}x theirs"
    ours, theirs = results.cell(OURS, rows, connections), results.cell(THEIRS, rows, connections)
    if not (ours and theirs and theirs.requests_per_second):
        return Target(goal, "not measured", None)
    ratio = ours.requests_per_second / theirs.requests_per_second
    measured = (
        f"{ours.requests_per_second:.0f} vs {theirs.requests_per_second:.0f} req/s = {ratio:.2f}x"
    )
    return Target(goal, measured, ratio >= factor)


def _p99_target(results: Results, *, rows: int, connections: int, share: float) -> Target:
    goal = f"{_cell_name(rows, connections)}: p99 <= {share:g}x theirs"
    ours, theirs = results.cell(OURS, rows, connections), results.cell(THEIRS, rows, connections)
    if not (ours and theirs and theirs.p99_ms):
        return Target(goal, "not measured", None)
    ratio = ours.p99_ms / theirs.p99_ms
    measured = f"{ours.p99_ms:.1f} vs {theirs.p99_ms:.1f} ms = {ratio:.3f}x"
    return Target(goal, measured, ratio <= share)


def _overhead_target(results: Results, *, limit_ms: float) -> Target:
    goal = f"{_cell_name(1, 1)}: p50 within {limit_ms:g} ms of in-process predict"
    ours, predict_s = results.cell(OURS, 1, 1), results.inprocess_median("wall").get(1)
    if ours is None or predict_s is None:
        return Target(goal, "not measured", None)
    gap = ours.p50_ms - 1000 * predict_s
    measured = f"{ours.p50_ms:.2f} vs {1000 * predict_s:.2f} ms = {gap:+.2f} ms"
    return Target(goal, measured, gap <= limit_ms)


def _served_overhead_target(results: Results, *, limit_ms: float) -> Target:
    """Issue 16: the server's own cost, against the predict call our workers make."""
    goal = f"{_cell_name(1, 1)}: p50 within {limit_ms:g} ms of our workers' predict"
    ours, predict_s = results.cell(OURS, 1, 1), results.inprocess_median("served_wall").get(1)
    if ours is None or predict_s is None:
        return Target(goal, "not measured", None)
    gap = ours.p50_ms - 1000 * predict_s
    measured = f"{ours.p50_ms:.2f} vs {1000 * predict_s:.2f} ms = {gap:+.2f} ms"
    return Target(goal, measured, gap <= limit_ms)


def _memory_target(results: Results, *, limit: float) -> Target:
    goal = f"memory: our PSS with 2 workers <= {limit:g}x with 1 worker"
    one, two = results.memory_sample(OURS, 1, IDLE), results.memory_sample(OURS, 2, IDLE)
    if not (one and two):
        return Target(goal, "not measured", None)
    ratio = two.total_pss_bytes / one.total_pss_bytes
    measured = (
        f"{two.total_pss_bytes / MIB:.0f} vs {one.total_pss_bytes / MIB:.0f} MiB = {ratio:.2f}x"
    )
    return Target(goal, measured, ratio <= limit)


def _server_columns(summary: CellSummary | None) -> str:
    if summary is None:
        return f"{'-':>8} {'-':>7} {'-':>8} {'-':>5} {'-':>7}"
    return (
        f"{summary.requests_per_second:8.1f} {summary.p50_ms:7.2f} {summary.p99_ms:8.2f} "
        f"{summary.errors:5d} {summary.cpu_ms_per_request:7.2f}"
    )


def _ratio_columns(ratios: dict[str, Any]) -> str:
    names = ("requests_per_second", "p50_ms", "p99_ms", "cpu_ms_per_request")
    return " ".join(
        f"{ratios[name]:6.2f}x" if ratios[name] is not None else f"{'-':>7}" for name in names
    )


def _render_table(results: Results) -> list[str]:
    server_header = f"{'req/s':>8} {'p50 ms':>7} {'p99 ms':>8} {'err':>5} {'cpu ms':>7}"
    width = len(server_header)
    lines = [
        f"{'':10} | {'ours':^{width}} | {'theirs (mlflow models serve)':^{width}} | "
        f"{'ours / theirs':^31}",
        f"{'rows':>4} {'conn':>5} | {server_header} | {server_header} | "
        f"{'req/s':>7} {'p50':>7} {'p99':>7} {'cpu':>7}",
    ]
    for rows, connections in _cells(results):
        lines.append(
            f"{rows:4d} {connections:5d} | "
            f"{_server_columns(results.cell(OURS, rows, connections))} | "
            f"{_server_columns(results.cell(THEIRS, rows, connections))} | "
            f"{_ratio_columns(_ratios(results, rows, connections))}"
        )
    lines.append(
        "req/s: successful answers per second; p50/p99: wrk's latency percentiles; err: errors "
        "and non-2xx summed over rounds; cpu ms: CPU time of all server processes per request."
    )
    return lines


def _render_memory(results: Results) -> list[str]:
    def cell(server: str, workers: int, when: str) -> str:
        sample = results.memory_sample(server, workers, when)
        if sample is None:
            return f"{'-':>16}"
        text = f"{sample.total_pss_bytes / MIB:.0f} MiB ({len(sample.processes)} proc)"
        return f"{text:>16}"

    def growth(server: str) -> str:
        one, two = results.memory_sample(server, 1, IDLE), results.memory_sample(server, 2, IDLE)
        if not (one and two):
            return f"{'-':>16}"
        return f"{two.total_pss_bytes / one.total_pss_bytes:15.2f}x"

    lines = [
        "Memory: PSS of every process of each server's tree",
        f"  {'':30} {'ours':>16} {'theirs':>16}",
    ]
    for workers, when in ((1, IDLE), (2, IDLE), (2, AFTER_RUNS)):
        label = f"{_plural(workers, 'worker')}, {when}"
        lines.append(f"  {label:30} {cell(OURS, workers, when)} {cell(THEIRS, workers, when)}")
    lines.append(f"  {'2 workers / 1 worker, idle':30} {growth(OURS)} {growth(THEIRS)}")
    theirs = results.memory_sample(THEIRS, 2, IDLE)
    if theirs and theirs.processes:
        lines.append(
            f"  theirs includes the idle `mlflow models serve` parent, "
            f"{theirs.processes[0].pss_bytes / MIB:.0f} MiB, which waits on uvicorn"
        )
    return lines


def _render_limit(results: Results) -> str:
    wall, cpu = results.inprocess_median("wall"), results.inprocess_median("cpu")
    served = results.inprocess_median("served_wall")
    return (
        "In-process limit (pyfunc predict in one process, OMP_NUM_THREADS=1, measured every "
        "round, medians): "
        + ", ".join(
            f"{rows} row(s) {1000 * wall[rows]:.2f} ms ({1000 * cpu[rows]:.2f} ms CPU)"
            for rows in wall
        )
        + "\nThe same predict as our server calls it, without MLflow's second schema pass: "
        + ", ".join(f"{rows} row(s) {1000 * served[rows]:.2f} ms" for rows in served)
    )


def render(results: Results) -> str:
    """The report as printed: setup, checks, the table, memory and the targets."""
    settings, machine = results.settings, results.machine
    lines = [
        f"Our server vs `mlflow models serve` on {results.model_uri}, "
        f"{settings['workers']} workers each, 127.0.0.1; {settings['rounds']} round(s) of "
        f"{settings['duration_s']} s per cell, servers alternated; medians over rounds",
        *machine_lines(machine),
        f"Command: {results.command}",
        *(f"  {name}: {command}" for name, command in results.server_commands.items()),
        "",
        "Same body to both servers before timing:",
        *(
            f"  {item.rows:3d} row(s): ours {item.statuses['ours']}, theirs "
            f"{item.statuses['theirs']}: {'OK' if item.equal else 'MISMATCH'}, {item.detail}"
            for item in results.verifications
        ),
        "",
        *_render_table(results),
        "",
        _render_limit(results),
        "",
        *_render_memory(results),
        "",
        "Targets (this machine, 2 workers each, medians over rounds):",
        *(
            f"  {'n/a' if target.met is None else 'MET' if target.met else 'NOT MET':8} "
            f"{target.goal:62} {target.measured}"
            for target in results.targets
        ),
    ]
    return "\n".join(lines)
