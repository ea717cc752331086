"""The PNG: requests/s, p99 and CPU per request of both servers, cell by cell."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.report import Results
from bench.servers import OURS, THEIRS

_PANELS = (
    ("requests_per_second", "requests/s (log; whiskers: min-max over rounds)", True),
    ("p99_ms", "p99 latency, ms (log)", True),
    ("cpu_ms_per_request", "server CPU ms per request", False),
)
_COLOURS = {OURS: "tab:blue", THEIRS: "tab:orange"}
_LABELS = {OURS: "ours", THEIRS: "mlflow models serve"}


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
