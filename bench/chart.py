"""The PNGs: requests/s, p99 and CPU per request of both servers, cell by cell (bench.compare);
time per request against columns and rows for ours, theirs and in-process (bench.overhead)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.overhead_report import OverheadResults, SweepPoint
from bench.report import Results
from bench.servers import OURS, THEIRS

PYFUNC = "pyfunc"
SERVED = "served"

_PANELS = (
    ("requests_per_second", "requests/s (log; whiskers: min-max over rounds)", True),
    ("p99_ms", "p99 latency, ms (log)", True),
    ("cpu_ms_per_request", "server CPU ms per request", False),
)
_COLOURS = {OURS: "tab:blue", THEIRS: "tab:orange", PYFUNC: "tab:green", SERVED: "tab:olive"}
_LABELS = {
    OURS: "ours",
    THEIRS: "mlflow models serve",
    PYFUNC: "in-process PyFuncModel.predict",
    SERVED: "in-process, the predict our workers call",
}
_SWEEP_SERIES: tuple[tuple[str, Callable[[SweepPoint], float | None]], ...] = (
    (OURS, lambda point: point.ours_ms),
    (THEIRS, lambda point: point.theirs_ms),
    (PYFUNC, lambda point: point.pyfunc_predict_ms),
    (SERVED, lambda point: point.served_predict_ms),
)


def write_chart(results: Results, path: Path) -> None:
    cells = sorted({(summary.rows, summary.connections) for summary in results.summaries})
    labels = [f"{rows} row{'s' if rows > 1 else ''}\nc={conn}" for rows, conn in cells]
    positions = range(len(cells))
    figure, axes = plt.subplots(1, len(_PANELS), figsize=(16, 5))
    for axis, (attribute, title, logarithmic) in zip(axes, _PANELS, strict=True):
        for offset, server in ((-0.2, OURS), (0.2, THEIRS)):
            summaries = [results.cell(server, rows, conn) for rows, conn in cells]
            values = [getattr(summary, attribute) if summary else 0.0 for summary in summaries]
            spread = None
            if attribute == "requests_per_second":  # whiskers: min and max over rounds
                spread = [
                    [
                        s.requests_per_second - s.requests_per_second_min if s else 0.0
                        for s in summaries
                    ],
                    [
                        s.requests_per_second_max - s.requests_per_second if s else 0.0
                        for s in summaries
                    ],
                ]
            axis.bar(
                [position + offset for position in positions],
                values,
                width=0.4,
                yerr=spread,
                capsize=3,
                color=_COLOURS[server],
                label=_LABELS[server],
            )
        axis.set_title(title)
        axis.set_xticks(list(positions), labels)
        if logarithmic:
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.yaxis.set_minor_formatter(NullFormatter())
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend()
    machine = results.machine
    figure.suptitle(
        f"{results.model_uri}, {results.settings['workers']} workers each, "
        f"medians of {results.settings['rounds']} round(s) x {results.settings['duration_s']} s; "
        f"{machine['cpus']} CPUs, revision {machine['revision']}"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_series(axis: Any, points: list[SweepPoint], x: str, per_row: bool = False) -> None:
    for series, value in _SWEEP_SERIES:
        pairs: list[tuple[int, float]] = []
        for point in points:
            ms = value(point)
            if ms is not None:  # us per row, or ms per request
                pairs.append((getattr(point, x), 1000 * ms / point.rows if per_row else ms))
        if pairs:
            xs, ys = zip(*pairs, strict=True)
            axis.plot(xs, ys, marker="o", color=_COLOURS[series], label=_LABELS[series])
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.grid(which="both", alpha=0.3)


def _caption(results: OverheadResults) -> str:
    settings, machine = results.settings, results.machine
    return (
        f"identity PyFunc models, {settings['workers']} workers per server, 1 connection, "
        f"p50 medians of {settings['rounds']} round(s); {machine['cpus']} CPUs, "
        f"revision {machine['revision']}"
    )


def write_sweep_charts(results: OverheadResults, directory: Path) -> list[Path]:
    """overhead-columns.png (log-log, 1 and 100 rows) and overhead-rows.png."""
    directory.mkdir(parents=True, exist_ok=True)
    columns_path, rows_path = directory / "overhead-columns.png", directory / "overhead-rows.png"
    row_counts = sorted({p.rows for p in results.column_points})
    figure, axes = plt.subplots(1, len(row_counts), figsize=(6 * len(row_counts), 5))
    for axis, rows in zip(np.atleast_1d(axes), row_counts, strict=True):
        _plot_series(axis, [p for p in results.column_points if p.rows == rows], "columns")
        axis.set_title(f"{rows} row(s) per request")
        axis.set_xlabel("double columns")
        axis.set_ylabel("ms per request (log)")
        axis.legend()
    figure.suptitle(f"Time per request against columns\n{_caption(results)}")
    figure.tight_layout()
    figure.savefig(columns_path, dpi=110)
    plt.close(figure)

    figure, (total, per_row) = plt.subplots(1, 2, figsize=(12, 5))
    _plot_series(total, results.row_points, "rows")
    total.set_title("ms per request (log)")
    _plot_series(per_row, results.row_points, "rows", per_row=True)
    per_row.set_title("us per row (log)")
    for axis in (total, per_row):
        axis.set_xlabel(f"rows per request ({results.settings['floor_columns']} double columns)")
    total.legend()
    figure.suptitle(f"Time against rows\n{_caption(results)}")
    figure.tight_layout()
    figure.savefig(rows_path, dpi=110)
    plt.close(figure)
    return [columns_path, rows_path]
