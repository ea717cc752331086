"""The serving stack's own cost: medians of the overhead bench's runs, its targets, the text.

Three parts, all with 2 workers per server and 1 connection unless said otherwise:
the trivial-model floor comparison (floor, ours, theirs on the 5-column identity model),
the column sweep (identity models 10 to 5,000 columns wide, 1 and 100 rows) and the row
sweep (the 5-column model, 1 to 10,000 rows); each against the in-process predict.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.machine import machine_lines
from bench.report import CellRun, CellSummary, Target, summarise
from bench.servers import FLOOR, OURS, THEIRS
from bench.verify import Verification

FLOOR_CONNECTIONS = (1, 64)
# For the log-log growth of our overhead: below this it is noise around zero.
OVERHEAD_FLOOR_MS = 0.05
# Growth allowed over linear (log-log slope) and over flat (time per row), for noise.
SLOPE_TOLERANCE = 1.15
PER_ROW_TOLERANCE = 1.10
# Per round: {"wall"|"cpu"|"served_wall": {rows: seconds}}, as bench.inprocess measures.
InProcessRound = dict[str, dict[int, float]]


@dataclass(frozen=True)
class LabelledCheck:
    """A verification of ours against theirs on one body, named by the model it used."""

    model: str
    verification: Verification


@dataclass(frozen=True)
class SweepPoint:
    """One frame shape: c=1 p50 of ours and theirs; in-process, the median of
    `PyFuncModel.predict` (MLflow's schema pass included) and of the predict call our
    workers make (`ServedModel.predict`: the model's own work once the request is parsed
    and checked, without MLflow's second schema pass)."""

    columns: int
    rows: int
    ours_ms: float | None
    theirs_ms: float | None
    pyfunc_predict_ms: float | None
    served_predict_ms: float | None

    @property
    def cells(self) -> int:
        return self.columns * self.rows

    @property
    def overhead_ms(self) -> float | None:
        """What our server adds to the predict call its workers make on the same frame.

        Not against `PyFuncModel.predict`: its schema pass costs more than our whole
        request on wide frames (0.6 s at 5,000 columns), so the difference says nothing.
        """
        if self.ours_ms is None or self.served_predict_ms is None:
            return None
        return self.ours_ms - self.served_predict_ms


@dataclass(frozen=True)
class LinearFit:
    """overhead_ms = fixed_ms + per_cell_us * cells / 1000, least squares over a sweep."""

    fixed_ms: float
    per_cell_us: float


@dataclass(frozen=True)
class OverheadResults:
    command: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    model_uris: dict[int, str]  # by number of columns
    server_commands: dict[str, str]
    verifications: list[LabelledCheck]
    floor_runs: list[CellRun]  # floor, ours, theirs; 1 row; FLOOR_CONNECTIONS
    row_runs: list[CellRun]  # ours, theirs; 5 columns; c=1
    row_inprocess: list[InProcessRound]
    column_runs: dict[int, list[CellRun]]  # by columns; ours, theirs; c=1
    column_inprocess: dict[int, list[InProcessRound]]
    floor_cells: list[CellSummary] = field(init=False)
    row_points: list[SweepPoint] = field(init=False)
    column_points: list[SweepPoint] = field(init=False)
    targets: list[Target] = field(init=False)

    def __post_init__(self) -> None:
        width = self.settings["floor_columns"]
        object.__setattr__(self, "floor_cells", summarise(self.floor_runs))
        object.__setattr__(self, "row_points", _points(width, self.row_runs, self.row_inprocess))
        points = [
            point
            for columns, runs in sorted(self.column_runs.items())
            for point in _points(columns, runs, self.column_inprocess.get(columns, []))
        ]
        object.__setattr__(self, "column_points", points)
        object.__setattr__(self, "targets", evaluate_targets(self))

    def floor_cell(self, server: str, connections: int) -> CellSummary | None:
        for summary in self.floor_cells:
            if (summary.server, summary.connections) == (server, connections):
                return summary
        return None

    def column_point(self, columns: int, rows: int) -> SweepPoint | None:
        for point in self.column_points:
            if (point.columns, point.rows) == (columns, rows):
                return point
        return None

    def as_dict(self) -> dict[str, Any]:
        fit = fit_per_cell_cost(self.column_points)
        return {
            "command": self.command,
            "settings": self.settings,
            "machine": self.machine,
            "model_uris": {str(columns): uri for columns, uri in self.model_uris.items()},
            "server_commands": self.server_commands,
            "verifications": [
                {"model": check.model, **asdict(check.verification)} for check in self.verifications
            ],
            "floor_cells": [asdict(summary) for summary in self.floor_cells],
            "row_sweep": [_point_dict(point) for point in self.row_points],
            "column_sweep": [_point_dict(point) for point in self.column_points],
            "per_cell_cost": asdict(fit) if fit else None,
            "targets": [asdict(target) for target in self.targets],
            "inprocess_ms_per_round": {
                "rows": [_round_ms(limit) for limit in self.row_inprocess],
                "columns": {
                    str(columns): [_round_ms(limit) for limit in limits]
                    for columns, limits in self.column_inprocess.items()
                },
            },
            "runs": {
                "floor": [run.as_dict() for run in self.floor_runs],
                "rows": [run.as_dict() for run in self.row_runs],
                "columns": {
                    str(columns): [run.as_dict() for run in runs]
                    for columns, runs in self.column_runs.items()
                },
            },
        }


def _round_ms(limit: InProcessRound) -> dict[str, dict[str, float]]:
    return {
        kind: {str(rows): 1000 * s for rows, s in values.items()} for kind, values in limit.items()
    }


def _point_dict(point: SweepPoint) -> dict[str, Any]:
    return {**asdict(point), "cells": point.cells, "overhead_ms": point.overhead_ms}


def _points(columns: int, runs: list[CellRun], limits: list[InProcessRound]) -> list[SweepPoint]:
    """Median c=1 p50 per server and rows; a cell where no request finished has none."""
    summaries = {(s.server, s.rows): s for s in summarise(runs)}
    rows_measured = sorted({rows for _, rows in summaries})

    def p50(server: str, rows: int) -> float | None:
        summary = summaries.get((server, rows))
        return summary.p50_ms if summary and summary.requests else None

    def inprocess(kind: str, rows: int) -> float | None:
        values = [limit[kind][rows] for limit in limits if rows in limit.get(kind, {})]
        return 1000 * statistics.median(values) if values else None

    return [
        SweepPoint(
            columns,
            rows,
            p50(OURS, rows),
            p50(THEIRS, rows),
            inprocess("wall", rows),
            inprocess("served_wall", rows),
        )
        for rows in rows_measured
    ]


def fit_per_cell_cost(points: list[SweepPoint]) -> LinearFit | None:
    """Least squares of our overhead against cells over the sweep."""
    pairs = [(p.cells, p.overhead_ms) for p in points if p.overhead_ms is not None]
    if len({cells for cells, _ in pairs}) < 2:
        return None
    mean_x = statistics.fmean(cells for cells, _ in pairs)
    mean_y = statistics.fmean(overhead for _, overhead in pairs)
    spread = sum((cells - mean_x) ** 2 for cells, _ in pairs)
    slope = sum((cells - mean_x) * (overhead - mean_y) for cells, overhead in pairs) / spread
    return LinearFit(fixed_ms=mean_y - slope * mean_x, per_cell_us=1000 * slope)


def overhead_slopes(points: list[SweepPoint]) -> list[tuple[SweepPoint, SweepPoint, float]]:
    """Log-log slope of our overhead between neighbouring widths with the same rows: 1 is
    linear in cells, above 1 faster than linear."""
    slopes = []
    for rows in sorted({p.rows for p in points}):
        series = sorted(
            (p for p in points if p.rows == rows and p.overhead_ms is not None),
            key=lambda p: p.cells,
        )
        for before, after in itertools.pairwise(series):
            grown = max(after.overhead_ms or 0.0, OVERHEAD_FLOOR_MS) / max(
                before.overhead_ms or 0.0, OVERHEAD_FLOOR_MS
            )
            slopes.append((before, after, math.log(grown) / math.log(after.cells / before.cells)))
    return slopes


def evaluate_targets(results: OverheadResults) -> list[Target]:
    return [
        _floor_latency_target(results, extra_ms=0.4),
        _floor_throughput_target(results, share=0.4),
        _wide_speedup_target(results, columns=1000, factor=3.0),
        _linear_overhead_target(results),
        _per_row_target(results),
    ]


def _floor_latency_target(results: OverheadResults, *, extra_ms: float) -> Target:
    goal = f"trivial model, 1 row, c=1: p50 <= floor + {extra_ms:g} ms"
    ours, floor = results.floor_cell(OURS, 1), results.floor_cell(FLOOR, 1)
    if not (ours and floor and ours.requests and floor.requests):
        return Target(goal, "not measured", None)
    gap = ours.p50_ms - floor.p50_ms
    measured = f"{ours.p50_ms:.3f} vs {floor.p50_ms:.3f} ms = floor {gap:+.3f} ms"
    return Target(goal, measured, gap <= extra_ms)


def _floor_throughput_target(results: OverheadResults, *, share: float) -> Target:
    goal = f"trivial model, 1 row, c=64: req/s >= {share:.0%} of floor"
    ours, floor = results.floor_cell(OURS, 64), results.floor_cell(FLOOR, 64)
    if not (ours and floor and floor.requests_per_second):
        return Target(goal, "not measured", None)
    ratio = ours.requests_per_second / floor.requests_per_second
    measured = f"{ours.requests_per_second:.0f} vs {floor.requests_per_second:.0f} = {ratio:.1%}"
    return Target(goal, measured, ratio >= share)


def _wide_speedup_target(results: OverheadResults, *, columns: int, factor: float) -> Target:
    goal = f"{columns} columns, c=1: p50 >= {factor:g}x faster than theirs"
    parts, met = [], []
    for point in (p for p in results.column_points if p.columns == columns):
        if point.ours_ms is None or point.theirs_ms is None:
            continue
        speedup = point.theirs_ms / point.ours_ms
        parts.append(f"{point.rows} row(s) {speedup:.1f}x")
        met.append(speedup >= factor)
    if not met:
        return Target(goal, "not measured", None)
    return Target(goal, ", ".join(parts), all(met))


def _linear_overhead_target(results: OverheadResults) -> Target:
    goal = f"columns: our overhead grows <= linearly in cells (slope <= {SLOPE_TOLERANCE})"
    slopes = overhead_slopes(results.column_points)
    if not slopes:
        return Target(goal, "not measured", None)
    steepest = max(slopes, key=lambda item: item[2])
    before, after, slope = steepest
    fit = fit_per_cell_cost(results.column_points)
    per_cell = f"; {fit.per_cell_us:.3f} us per cell" if fit else ""
    measured = (
        f"steepest {slope:.2f} ({before.columns}->{after.columns} columns, "
        f"{after.rows} row(s)){per_cell}"
    )
    return Target(goal, measured, slope <= SLOPE_TOLERANCE)


def _per_row_target(results: OverheadResults) -> Target:
    goal = "rows: our time per row falls or stays flat (1 to 10,000 rows)"
    per_row = [(p.rows, p.ours_ms / p.rows) for p in results.row_points if p.ours_ms is not None]
    if len(per_row) < 2:
        return Target(goal, "not measured", None)
    growth, before, after = max(
        (later / earlier, rows_before, rows_after)
        for (rows_before, earlier), (rows_after, later) in itertools.pairwise(per_row)
    )
    measured = f"largest change {growth:.2f}x per row ({before}->{after} rows)"
    return Target(goal, measured, growth <= PER_ROW_TOLERANCE)


def _ms(value: float | None, width: int = 9, digits: int = 3) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def _render_floor(results: OverheadResults) -> list[str]:
    lines = [
        f"Trivial model: identity, {results.settings['floor_columns']} double columns, 1-row "
        "dataframe_split body; medians over rounds",
        f"  {'server':8} {'c=1 req/s':>10} {'c=1 p50 ms':>11} {'c=64 req/s':>11} "
        f"{'c=64 p99 ms':>12} {'err':>5} {'cpu ms/req c=1':>15} {'c=64':>6}",
    ]
    for server in (FLOOR, OURS, THEIRS):
        one, many = results.floor_cell(server, 1), results.floor_cell(server, 64)
        errors = sum(cell.errors for cell in (one, many) if cell)
        lines.append(
            f"  {server:8} {_ms(one.requests_per_second if one else None, 10, 0)} "
            f"{_ms(one.p50_ms if one else None, 11)} "
            f"{_ms(many.requests_per_second if many else None, 11, 0)} "
            f"{_ms(many.p99_ms if many else None, 12, 2)} {errors:5d} "
            f"{_ms(one.cpu_ms_per_request if one else None, 15)} "
            f"{_ms(many.cpu_ms_per_request if many else None, 6)}"
        )
    return lines


def _render_columns(results: OverheadResults) -> list[str]:
    lines = [
        "Column sweep: identity models, c=1, p50 ms per request; in-process medians: pyfunc = "
        "PyFuncModel.predict, served = the predict our workers call; overhead = ours - served",
        f"  {'columns':>7} {'rows':>5} {'cells':>7} {'ours':>9} {'theirs':>9} {'pyfunc':>9} "
        f"{'served':>9} {'overhead':>9} {'theirs/ours':>11}",
    ]
    for p in results.column_points:
        speedup = p.theirs_ms / p.ours_ms if p.theirs_ms and p.ours_ms else None
        lines.append(
            f"  {p.columns:7d} {p.rows:5d} {p.cells:7d} {_ms(p.ours_ms)} {_ms(p.theirs_ms)} "
            f"{_ms(p.pyfunc_predict_ms)} {_ms(p.served_predict_ms)} {_ms(p.overhead_ms)} "
            f"{_ms(speedup, 10, 1)}x"
        )
    fit = fit_per_cell_cost(results.column_points)
    if fit:
        lines.append(
            f"  Our overhead, least squares over the sweep: {fit.fixed_ms:.3f} ms "
            f"+ {fit.per_cell_us:.3f} us per cell"
        )
    for before, after, slope in overhead_slopes(results.column_points):
        lines.append(
            f"  overhead growth {before.columns}->{after.columns} columns, {after.rows} row(s): "
            f"log-log slope {slope:.2f}"
        )
    return lines


def _per_row(ms: float | None, rows: int) -> str:
    if ms is None:
        return f"{'-':>8} {'-':>9}"
    return f"{1000 * ms / rows:8.2f} {rows / ms * 1000:9.0f}"


def _render_rows(results: OverheadResults) -> list[str]:
    lines = [
        f"Row sweep: identity, {results.settings['floor_columns']} columns, c=1; p50 ms per "
        "request, us per row, rows/s; in-process medians as above (pyfunc: the limit)",
        f"  {'rows':>6} | {'ours':>9} {'us/row':>8} {'rows/s':>9} | {'theirs':>9} {'us/row':>8} "
        f"{'rows/s':>9} | {'pyfunc':>9} {'us/row':>8} {'rows/s':>9} | {'served':>9} | "
        "ours/pyfunc rows/s",
    ]
    for p in results.row_points:
        share = p.pyfunc_predict_ms / p.ours_ms if p.pyfunc_predict_ms and p.ours_ms else None
        lines.append(
            f"  {p.rows:6d} | {_ms(p.ours_ms)} {_per_row(p.ours_ms, p.rows)} | "
            f"{_ms(p.theirs_ms)} {_per_row(p.theirs_ms, p.rows)} | "
            f"{_ms(p.pyfunc_predict_ms)} {_per_row(p.pyfunc_predict_ms, p.rows)} | "
            f"{_ms(p.served_predict_ms)} | "
            f"{f'{share:.1%}' if share is not None else '-':>8}"
        )
    return lines


def render(results: OverheadResults) -> str:
    settings, machine = results.settings, results.machine
    checks = [
        f"  {check.model}, {check.verification.rows} row(s): "
        f"{'OK' if check.verification.equal else 'MISMATCH'}, {check.verification.detail}"
        for check in results.verifications
    ]
    lines = [
        f"The serving stack's own cost: floor, ours and `mlflow models serve`, "
        f"{settings['workers']} workers each, 127.0.0.1; {settings['rounds']} round(s); "
        f"floor cells {settings['duration_s']} s, sweep cells at least "
        f"{settings['sweep_duration_s']} s",
        *machine_lines(machine),
        f"Command: {results.command}",
        *(f"  {name}: {command}" for name, command in results.server_commands.items()),
        "",
        "Same body to ours and theirs before timing:",
        *checks,
        "",
        *_render_floor(results),
        "",
        *_render_columns(results),
        "",
        *_render_rows(results),
        "",
        "Targets (this machine, 2 workers each, medians over rounds):",
        *(
            f"  {'n/a' if target.met is None else 'MET' if target.met else 'NOT MET':8} "
            f"{target.goal:66} {target.measured}"
            for target in results.targets
        ),
    ]
    return "\n".join(lines)
