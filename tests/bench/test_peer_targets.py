"""The issue's targets are judged against the best peer measured in the run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.load import LoadResult
from bench.peers.report import DEMO, IDENTITY, ModelRun, PeerInfo, PeerResults, render
from bench.proctree import ProcessMemory
from bench.report import MIB, CellRun, MemorySample, Target

MACHINE = {
    "cpus": 2,
    "cpu_model": "test",
    "memory_gib": 1.0,
    "kernel": "test",
    "python": "3.11",
    "wrk": "wrk",
    "packages": {},
    "revision": "abc",
    "load_average_at_start": (4.0, 4.0, 4.0),
    "load_average_at_end": (4.0, 4.0, 4.0),
}
SETTINGS = {"workers": 2, "rounds": 1, "duration_s": 1, "wall_time_s": 1}


def cell(server: str, rows: int, connections: int, rps: float, p50: float, p99: float) -> CellRun:
    load = LoadResult(1.0, int(rps), 0, 0, p50, p99, p50, p99)
    return CellRun(server, rows, connections, 0, load, 0.1)


def memory(server: str, mib: int) -> MemorySample:
    return MemorySample(server, 2, "after warm-up", [ProcessMemory(1, server, mib * MIB)])


def model_run(model: str, figures: dict[str, tuple[float, float, float, float]]) -> ModelRun:
    """Per server: req/s at 1 row c=64 (half that at c=1), p99 there, p50 at 1 row c=1,
    req/s at 100 rows c=8."""
    runs = []
    for server, (rps64, p99_64, p50_1, rps100) in figures.items():
        runs += [
            cell(server, 1, 1, rps64 / 2, p50_1, 2 * p50_1),
            cell(server, 1, 64, rps64, 50.0, p99_64),
            cell(server, 100, 8, rps100, 20.0, 40.0),
        ]
    return ModelRun(model, f"models:/{model}/1", {}, {}, {}, runs, [])


def results(*runs: ModelRun) -> PeerResults:
    peers = [PeerInfo(name, name.upper(), "p", {}) for name in ("ours", "mlserver", "bentoml")]
    return PeerResults("python -m bench.peers", SETTINGS, MACHINE, peers, list(runs))


def by_goal(targets: list[Target], words: str) -> Target:
    return next(target for target in targets if words in target.goal)


def test_targets_compare_with_the_best_peer_of_each_cell() -> None:
    demo = model_run(
        DEMO,
        {
            "ours": (3000.0, 40.0, 4.0, 500.0),
            "mlserver": (900.0, 100.0, 5.0, 300.0),  # the best at 64 conns, p99 best too
            "bentoml": (100.0, 900.0, 3.0, 100.0),  # the lowest p50 at 1 conn
        },
    )
    targets = results(demo).targets
    throughput = by_goal(targets, "1 row, 64 conn: req/s")
    assert throughput.met is True
    assert "MLSERVER" in throughput.measured
    assert by_goal(targets, "p99").met is True  # 40 <= 0.5 x 100
    p50 = by_goal(targets, "p50")
    assert p50.met is False
    assert "BENTOML" in p50.measured
    assert by_goal(targets, "100 rows, 8 conn").met is False  # 500 < 2 x 300


def test_a_run_without_a_model_or_a_peer_is_not_judged() -> None:
    only_ours = model_run(DEMO, {"ours": (3000.0, 40.0, 4.0, 500.0)})
    assert all(target.met is None for target in results(only_ours).targets)


@pytest.mark.parametrize(("peer_rps", "met"), [(999.0, True), (1001.0, False)])
def test_the_identity_model_must_be_ahead_in_every_cell(peer_rps: float, met: bool) -> None:
    identity = model_run(
        IDENTITY,
        {"ours": (1000.0, 10.0, 1.0, 1000.0), "mlserver": (peer_rps, 10.0, 1.0, 10.0)},
    )
    assert by_goal(results(identity).targets, "identity").met is met


def test_memory_must_be_the_lowest_of_all() -> None:
    demo = model_run(DEMO, {"ours": (1.0, 1.0, 1.0, 1.0), "mlserver": (1.0, 1.0, 1.0, 1.0)})
    lower = ModelRun(
        DEMO, demo.model_uri, {}, {}, {}, demo.runs, [memory("ours", 300), memory("mlserver", 400)]
    )
    higher = ModelRun(
        DEMO, demo.model_uri, {}, {}, {}, demo.runs, [memory("ours", 500), memory("mlserver", 400)]
    )
    assert by_goal(results(lower).targets, "PSS").met is True
    assert by_goal(results(higher).targets, "PSS").met is False


def test_the_report_names_a_peer_not_measured_and_why() -> None:
    demo = model_run(DEMO, {"ours": (1.0, 1.0, 1.0, 1.0)})
    missing = ModelRun(
        DEMO, demo.model_uri, {}, {}, {"kserve": "did not start:\nboom"}, demo.runs, []
    )
    report = render(results(missing))
    assert "NOT MEASURED kserve: did not start: / boom" in report


def test_a_latency_target_is_not_met_where_ours_shed_requests() -> None:
    """wrk's percentiles include the 503s a shed request gets at once."""
    demo = model_run(
        DEMO, {"ours": (3000.0, 40.0, 4.0, 500.0), "mlserver": (900.0, 100.0, 5.0, 1.0)}
    )
    shed = [
        CellRun(run.server, run.rows, run.connections, 0, replace(run.load, status_errors=5), 0.1)
        if run.server == "ours" and run.connections == 64
        else run
        for run in demo.runs
    ]
    target = by_goal(results(replace(demo, runs=shed)).targets, "p99")
    assert target.met is False
    assert "503" in target.measured
