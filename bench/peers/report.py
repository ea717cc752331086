"""From the peers' raw runs to medians per cell, the issue's targets, and a Markdown report
(the tables docs/peers.md shows)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load import LoadResult
from bench.machine import machine_lines
from bench.proctree import ProcessMemory
from bench.report import MIB, CellRun, CellSummary, MemorySample, Target, summarise
from bench.servers import OURS
from bench.verify import Verification

DEMO = "demo"
IDENTITY = "identity"
# (rows, connections) of every timed cell.
CELLS = ((1, 1), (1, 64), (100, 8))


@dataclass(frozen=True)
class PeerInfo:
    name: str
    label: str
    protocol: str
    versions: dict[str, str]


@dataclass(frozen=True)
class ModelRun:
    """One model served by every peer that could serve it, measured together."""

    model: str
    model_uri: str
    commands: dict[str, str]  # peer: command line
    verifications: dict[str, list[Verification]]  # peer: one per body
    unavailable: dict[str, str]  # peer: why it was not measured
    runs: list[CellRun]
    memory: list[MemorySample]
    summaries: list[CellSummary] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summaries", summarise(self.runs))

    @property
    def measured(self) -> list[str]:
        """Peers with at least one timed cell, in the order they were started."""
        return list(dict.fromkeys(run.server for run in self.runs))

    def cell(self, server: str, rows: int, connections: int) -> CellSummary | None:
        for summary in self.summaries:
            if (summary.server, summary.rows, summary.connections) == (server, rows, connections):
                return summary
        return None

    def pss_mib(self, server: str) -> float | None:
        for sample in self.memory:
            if sample.server == server:
                return sample.total_pss_bytes / MIB
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_uri": self.model_uri,
            "commands": self.commands,
            "verifications": {
                peer: [asdict(item) for item in items] for peer, items in self.verifications.items()
            },
            "unavailable": self.unavailable,
            "cells": [asdict(summary) for summary in self.summaries],
            "memory": [
                {**asdict(sample), "total_pss_bytes": sample.total_pss_bytes}
                for sample in self.memory
            ],
            "runs": [run.as_dict() for run in self.runs],
        }


@dataclass(frozen=True)
class PeerResults:
    command: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    peers: list[PeerInfo]
    models: list[ModelRun]
    targets: list[Target] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", evaluate_targets(self))

    def model(self, name: str) -> ModelRun | None:
        return next((run for run in self.models if run.model == name), None)

    def label(self, peer: str) -> str:
        return next((info.label for info in self.peers if info.name == peer), peer)

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "settings": self.settings,
            "machine": self.machine,
            "peers": [asdict(info) for info in self.peers],
            "models": [run.as_dict() for run in self.models],
            "targets": [asdict(target) for target in self.targets],
        }


def load_results(data: dict[str, Any]) -> PeerResults:
    """PeerResults again from peers-latest.json (`python -m bench.peers --render`): the
    report and the targets re-derived from the raw runs, nothing re-measured."""
    models = []
    for model in data["models"]:
        runs = [
            CellRun(
                run["server"],
                run["rows"],
                run["connections"],
                run["round"],
                LoadResult(**{name: run[name] for name in LoadResult.__dataclass_fields__}),
                run["cpu_seconds"],
            )
            for run in model["runs"]
        ]
        samples = [
            MemorySample(
                sample["server"],
                sample["workers"],
                sample["when"],
                [ProcessMemory(**process) for process in sample["processes"]],
            )
            for sample in model["memory"]
        ]
        checks = {
            peer: [Verification(**item) for item in items]
            for peer, items in model["verifications"].items()
        }
        models.append(
            ModelRun(
                model["model"],
                model["model_uri"],
                model["commands"],
                checks,
                model["unavailable"],
                runs,
                samples,
            )
        )
    peers = [PeerInfo(**info) for info in data["peers"]]
    return PeerResults(data["command"], data["settings"], data["machine"], peers, models)


def _others(run: ModelRun) -> list[str]:
    return [peer for peer in run.measured if peer != OURS]


def _best(
    results: PeerResults, run: ModelRun, rows: int, connections: int, attribute: str, *, most: bool
) -> tuple[str, float, float] | None:
    """(best peer's label, its value, ours) for one cell; None when not both measured."""
    ours = run.cell(OURS, rows, connections)
    values = {
        peer: getattr(summary, attribute)
        for peer in _others(run)
        if (summary := run.cell(peer, rows, connections)) is not None
    }
    if ours is None or not values:
        return None
    pick = max if most else min
    best = pick(values, key=lambda peer: values[peer])
    return results.label(best), values[best], getattr(ours, attribute)


def _cell_name(rows: int, connections: int) -> str:
    return f"{rows} row{'s' if rows > 1 else ''}, {connections} conn"


def _shed_note(run: ModelRun | None, rows: int, connections: int) -> str:
    """Non-2xx answers of ours in a cell: they are not counted in req/s, but wrk's latency
    percentiles include them (a shed request is answered 503 at once), so a latency target
    is not met where ours answered errors."""
    ours = run.cell(OURS, rows, connections) if run else None
    if ours is None or not ours.errors:
        return ""
    return f"; ours answered {ours.errors} of {ours.requests} with an error (503: shed)"


def _throughput(results: PeerResults, rows: int, connections: int, factor: float) -> Target:
    goal = f"demo, {_cell_name(rows, connections)}: req/s >= {factor:g}x the best peer's"
    run = results.model(DEMO)
    found = run and _best(results, run, rows, connections, "requests_per_second", most=True)
    if not found:
        return Target(goal, "not measured", None)
    label, best, ours = found
    ratio = ours / best if best else float("inf")
    measured = f"{ours:.0f} vs {best:.0f} ({label}) = {ratio:.2f}x"
    return Target(goal, measured + _shed_note(run, rows, connections), ratio >= factor)


def _p99(results: PeerResults, rows: int, connections: int, share: float) -> Target:
    goal = f"demo, {_cell_name(rows, connections)}: p99 <= {share:g}x the best peer's"
    run = results.model(DEMO)
    found = run and _best(results, run, rows, connections, "p99_ms", most=False)
    if not found:
        return Target(goal, "not measured", None)
    label, best, ours = found
    ratio = ours / best
    measured = f"{ours:.1f} vs {best:.1f} ms ({label}) = {ratio:.2f}x"
    shed = _shed_note(run, rows, connections)
    return Target(goal, measured + shed, ratio <= share and not shed)


def _p50(results: PeerResults, rows: int, connections: int) -> Target:
    goal = f"demo, {_cell_name(rows, connections)}: p50 lower than every peer's"
    run = results.model(DEMO)
    found = run and _best(results, run, rows, connections, "p50_ms", most=False)
    if not found:
        return Target(goal, "not measured", None)
    label, best, ours = found
    measured = f"{ours:.2f} vs {best:.2f} ms ({label})"
    shed = _shed_note(run, rows, connections)
    return Target(goal, measured + shed, ours < best and not shed)


def _identity_ahead(results: PeerResults) -> Target:
    goal = "identity model: req/s ahead of every peer in every cell"
    run = results.model(IDENTITY)
    ratios = []
    for rows, connections in CELLS:
        found = run and _best(results, run, rows, connections, "requests_per_second", most=True)
        if found:
            label, best, ours = found
            ratios.append((ours / best if best else float("inf"), label, rows, connections))
    if not ratios:
        return Target(goal, "not measured", None)
    ratio, label, rows, connections = min(ratios)
    measured = f"closest: {_cell_name(rows, connections)}, {ratio:.2f}x {label}"
    return Target(goal, measured, all(item[0] > 1 for item in ratios))


def _memory(results: PeerResults) -> Target:
    goal = "demo, 2 workers: PSS after warm-up the lowest of all"
    run = results.model(DEMO)
    if run is None:
        return Target(goal, "not measured", None)
    ours = run.pss_mib(OURS)
    others = {peer: mib for peer in _others(run) if (mib := run.pss_mib(peer)) is not None}
    if ours is None or not others:
        return Target(goal, "not measured", None)
    lowest = min(others, key=lambda peer: others[peer])
    measured = f"{ours:.0f} vs {others[lowest]:.0f} MiB ({results.label(lowest)})"
    return Target(goal, measured, ours < others[lowest])


def evaluate_targets(results: PeerResults) -> list[Target]:
    """The issue's targets against every peer measured in this run (medians over rounds)."""
    return [
        _throughput(results, 1, 64, factor=3),
        _p99(results, 1, 64, share=0.5),
        _p50(results, 1, 1),
        _throughput(results, 100, 8, factor=2),
        _identity_ahead(results),
        _memory(results),
    ]


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_table(results: PeerResults, run: ModelRun) -> list[str]:
    """One Markdown row per peer: req/s, p50, p99 of every cell, errors, memory."""
    header = ["server"]
    for rows, connections in CELLS:
        cell = f"{rows}r c{connections}"
        header += [f"{cell} req/s", f"{cell} p50 ms", f"{cell} p99 ms"]
    header += ["errors", "PSS MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for peer in run.measured:
        cells = [results.label(peer)]
        errors = 0
        for rows, connections in CELLS:
            summary = run.cell(peer, rows, connections)
            errors += summary.errors if summary else 0
            if summary is None:
                cells += ["-", "-", "-"]
                continue
            cells += [
                _figure(summary.requests_per_second, 0),
                _figure(summary.p50_ms, 2),
                _figure(summary.p99_ms, 1),
            ]
        cells += [str(errors), _figure(run.pss_mib(peer), 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ratio_lines(results: PeerResults, run: ModelRun) -> list[str]:
    lines = []
    for rows, connections in CELLS:
        ours = run.cell(OURS, rows, connections)
        if ours is None:
            continue
        ratios = [
            f"{results.label(peer)} {ours.requests_per_second / other.requests_per_second:.1f}x"
            for peer in _others(run)
            if (other := run.cell(peer, rows, connections)) and other.requests_per_second
        ]
        lines.append(f"- ours' req/s, {_cell_name(rows, connections)}: " + ", ".join(ratios))
    return lines


def render(results: PeerResults) -> str:
    """The report as printed (Markdown): setup, checks, one table per model, targets."""
    settings = results.settings
    lines = [
        f"Ours against the serving peers, {settings['workers']} workers each, 127.0.0.1; "
        f"{settings['rounds']} round(s) of {settings['duration_s']} s per cell, peers "
        "alternated (the order rotates every round); medians over rounds",
        "",
        *(f"- {line}" for line in machine_lines(results.machine)),
        f"- Command: `{results.command}` ({results.settings['wall_time_s']} s)",
        "",
        "Versions:",
        *(
            f"- {info.label} ({info.protocol}): "
            + ", ".join(f"{name} {version}" for name, version in info.versions.items())
            for info in results.peers
        ),
    ]
    for run in results.models:
        lines += ["", f"### {run.model} model: `{run.model_uri}`", "", "Commands:", ""]
        lines += [f"- {results.label(peer)}: `{command}`" for peer, command in run.commands.items()]
        lines += ["", "Same rows to every peer, answers compared with ours before timing:", ""]
        for peer, items in run.verifications.items():
            for item in items:
                verdict = "OK" if item.equal else "DIFFERENT"
                lines.append(
                    f"- {results.label(peer)}, {item.rows} row(s): {verdict}, {item.detail}"
                )
        for peer, reason in run.unavailable.items():
            lines.append(f"- NOT MEASURED {results.label(peer)}: {reason.replace(chr(10), ' / ')}")
        lines += ["", *render_table(results, run), "", *_ratio_lines(results, run)]
    load = statistics.mean(results.machine["load_average_at_start"][:1])
    lines += [
        "",
        f"Targets (this machine, load average {load:.1f} at start; medians over rounds):",
        "",
        *(
            f"- {'n/a' if target.met is None else 'MET' if target.met else 'NOT MET'}: "
            f"{target.goal}: {target.measured}"
            for target in results.targets
        ),
    ]
    return "\n".join(lines)
