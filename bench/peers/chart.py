"""peers.png: requests/s, latency and memory of every peer, cell by cell, per model."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from bench.peers.report import CELLS, ModelRun, PeerResults
from bench.servers import OURS

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:olive", "tab:red", "tab:purple")


def _colours(results: PeerResults) -> dict[str, str]:
    names = [info.name for info in results.peers]
    return {name: _COLOURS[index % len(_COLOURS)] for index, name in enumerate(names)}


def _bars(
    axis: Axes, results: PeerResults, run: ModelRun, values: dict[str, float], title: str
) -> None:
    colours = _colours(results)
    peers = [peer for peer in run.measured if peer in values]
    axis.bar(
        range(len(peers)),
        [values[peer] for peer in peers],
        color=[colours[peer] for peer in peers],
        edgecolor=["black" if peer == OURS else "none" for peer in peers],
    )
    for index, peer in enumerate(peers):
        axis.annotate(
            f"{values[peer]:,.0f}" if values[peer] >= 10 else f"{values[peer]:.1f}",
            (index, values[peer]),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    axis.set_xticks(range(len(peers)), [results.label(peer) for peer in peers], rotation=35,
                    ha="right", fontsize=7)  # fmt: skip
    axis.set_title(title, fontsize=9)
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.grid(axis="y", alpha=0.3)


def write_peers_chart(results: PeerResults, path: Path) -> None:
    """Two rows of panels per model: req/s of each cell and PSS after warm-up; p50 at one
    connection and p99 of each cell."""
    figure, axes = plt.subplots(
        2 * len(results.models), len(CELLS) + 1, figsize=(16, 7.5 * len(results.models)),
        squeeze=False,
    )  # fmt: skip
    for index, run in enumerate(results.models):
        top, bottom = axes[2 * index], axes[2 * index + 1]
        for column, (rows, connections) in enumerate(CELLS):
            cell = f"{rows} row{'s' if rows > 1 else ''}, c={connections}"
            summaries = {peer: run.cell(peer, rows, connections) for peer in run.measured}
            ours = summaries.get(OURS)
            if ours is not None and ours.errors:  # its latencies include the fast errors
                cell += f"\n(ours: {100 * ours.errors / ours.requests:.0f} % errors, 503)"
            throughput = {p: s.requests_per_second for p, s in summaries.items() if s}
            p99 = {p: s.p99_ms for p, s in summaries.items() if s}
            _bars(top[column], results, run, throughput, f"{run.model}: req/s, {cell}")
            _bars(bottom[column + 1], results, run, p99, f"{run.model}: p99 ms, {cell}")
        pss = {peer: mib for peer in run.measured if (mib := run.pss_mib(peer)) is not None}
        _bars(top[-1], results, run, pss, f"{run.model}: PSS MiB after warm-up")
        first = {p: s.p50_ms for p in run.measured if (s := run.cell(p, *CELLS[0]))}
        _bars(bottom[0], results, run, first, f"{run.model}: p50 ms, 1 row, c=1")
    machine, settings = results.machine, results.settings
    load = machine["load_average_at_start"][0]
    figure.suptitle(
        f"{settings['workers']} workers each, medians of {settings['rounds']} round(s) x "
        f"{settings['duration_s']} s, peers alternated; {machine['cpus']} CPUs shared with "
        f"the load generator, load average {load:.1f} at start; revision {machine['revision']}"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
