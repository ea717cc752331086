"""A shadow candidate through the production command, with models that are not the demo.

The candidates (tests/app/shadow_models.py) disagree on a known share of rows, fail, or are
slow. The client's answers and statuses are the served model's in every case, and a slow
shadow does not slow them; the comparison is measured at the share built into the
candidate; a full queue drops and counts; `shadow_report` prints the comparison and
`promote --require-shadow-agreement` refuses below its bound and accepts above it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.app.shadow_models import (
    FLIPPED_SCORE_SHIFT,
    FLIPPED_SEGMENTS,
    SEGMENTS,
    SLOW_PREDICT_SECONDS,
    primary_answers,
    rows_for,
)
from tests.ops.prometheus import JOB, running_prometheus
from tests.ops.promql import find_tool
from tests.support import PROJECT_ROOT
from tests.support.demo import RegisteredDemo
from tests.support.processes import run_module
from tests.support.production import RunningServer, start_server, stop, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

REQUESTS = 60  # of SEGMENTS rows each: 600 rows compared
FLIPPED_SHARE = len(FLIPPED_SEGMENTS) / SEGMENTS
# Every row is compared (nothing is sampled out or dropped at this pace), so the measured
# share is the built-in one exactly; the tolerance only allows for a lost row or two.
SHARE_TOLERANCE = 0.01
COMPARISON_SECONDS = 30.0


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    made = run_module("tests.app.shadow_models", str(tmp_path_factory.mktemp("shadow-registry")))
    registry: dict[str, str] = json.loads(made.strip().splitlines()[-1])
    return registry


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for server in started:
        server.kill()


def start_with_shadow(
    candidates: dict[str, str],
    servers: list[RunningServer],
    workdir: Path,
    role: str | None,
    *,
    workers: int = 2,
    **env: str,
) -> RunningServer:
    """The primary version served, with the candidate `role` names as its shadow (None:
    no shadow)."""
    registry = RegisteredDemo(candidates["tracking_uri"], candidates["name"], "", "")
    workdir.mkdir(parents=True, exist_ok=True)
    if role is not None:
        env["SHADOW_MODEL_URI"] = f"models:/{candidates['name']}/{candidates[role]}"
    server = start_server(
        registry,
        workdir,
        workers=workers,
        MODEL_URI=f"models:/{candidates['name']}/{candidates['primary']}",
        **env,
    )
    servers.append(server)
    return server


def score(server: RunningServer, request_number: int) -> tuple[list[dict[str, Any]], float]:
    """One request of a row per segment: the client's predictions, checked against the
    served model's own answers, and the time the client waited."""
    rows = rows_for(range(SEGMENTS), request_number)
    started = time.perf_counter()
    response = httpx.post(
        f"{server.base_url}/invocations", json={"dataframe_records": rows}, timeout=30
    )
    waited = time.perf_counter() - started
    assert response.status_code == 200, response.text
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    assert predictions == primary_answers(pd.DataFrame(rows)).to_dict("records")
    return predictions, waited


def offered_rows(server: RunningServer) -> float:
    return server.metric("model_shadow_rows_total")


def wait_all_offered(server: RunningServer, rows: int) -> None:
    wait_until(
        lambda: offered_rows(server) >= rows,
        COMPARISON_SECONDS,
        f"{rows} rows through the shadow",
        alive=server.alive,
        detail=server.log_tail,
    )


def registry_command(
    candidates: dict[str, str], module: str, *args: str
) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", f"registry_scripts.{module}", *args],
        cwd=PROJECT_ROOT,
        env={"MLFLOW_TRACKING_URI": candidates["tracking_uri"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def flipping_server(
    candidates: dict[str, str],
    servers: list[RunningServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningServer:
    """Served with the flipping candidate as its shadow, after REQUESTS requests."""
    server = start_with_shadow(candidates, servers, tmp_path_factory.mktemp("flip"), "flipping")
    wait_ready(server)
    for number in range(REQUESTS):
        score(server, number)
    wait_all_offered(server, REQUESTS * SEGMENTS)
    return server


def test_a_disagreeing_candidate_is_measured_at_the_share_it_disagrees_on(
    flipping_server: RunningServer,
) -> None:
    server = flipping_server
    rows = REQUESTS * SEGMENTS
    assert server.metric("model_shadow_rows_total", outcome="compared") == rows
    disagreeing = sum(
        server.metric("model_shadow_agreement_total", field="label", primary=p, shadow=s)
        for p, s in (("approve", "refer"), ("refer", "approve"))
    )
    assert abs(disagreeing / rows - FLIPPED_SHARE) <= SHARE_TOLERANCE
    exact = server.metric("model_shadow_difference_bucket", field="score", le="0.0")
    assert abs(exact / rows - (1 - FLIPPED_SHARE)) <= SHARE_TOLERANCE


def test_the_report_prints_agreement_disagreements_and_differences(
    candidates: dict[str, str], flipping_server: RunningServer
) -> None:
    code, report = registry_command(
        candidates, "shadow_report", "--metrics-url", f"{flipping_server.ops_url}/metrics"
    )
    assert code == 0, report
    assert report["shadow"] == [{"name": candidates["name"], "version": candidates["flipping"]}]
    assert report["rows"]["compared"] == REQUESTS * SEGMENTS
    label, score_field = report["fields"]["label"], report["fields"]["score"]
    assert label["kind"] == "categorical"
    assert abs(label["agreement"] - (1 - FLIPPED_SHARE)) <= SHARE_TOLERANCE
    assert score_field["kind"] == "numeric"
    assert score_field["difference_at_most"]["p50"] == 0.0
    # The flipped rows' shift lies in the bucket (0.2, 0.5]: p99 is bounded by its top.
    assert 0.2 < FLIPPED_SCORE_SHIFT <= score_field["difference_at_most"]["p99"] == 0.5
    cells = {(c["field"], c["primary"], c["shadow"]) for c in report["largest_disagreements"]}
    assert cells == {("label", "approve", "refer"), ("label", "refer", "approve")}
    assert report["shadow_errors"] == 0


def test_promotion_requires_the_shadow_agreement_and_rows_asked_for(
    candidates: dict[str, str], flipping_server: RunningServer
) -> None:
    metrics = ["--shadow-metrics-url", f"{flipping_server.ops_url}/metrics"]
    promote = ["--name", candidates["name"], "--version", candidates["flipping"], *metrics]

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        return registry_command(candidates, "promote", *promote, *args)

    agreement = 1 - FLIPPED_SHARE
    code, refused = run("--require-shadow-agreement", str(agreement + 0.05))
    assert code == 3, refused
    assert "below" in refused["error"]
    code, refused = run(
        "--require-shadow-agreement", str(agreement + 0.05), "--shadow-fields", "score"
    )
    assert code == 3, refused
    assert "on score" in refused["error"]
    code, refused = run("--require-shadow-agreement", "0.5", "--min-shadow-rows", "100000")
    assert code == 3, refused
    assert "fewer than" in refused["error"]
    code, refused = registry_command(
        candidates,
        "promote",
        *["--name", candidates["name"], "--version", candidates["slow"], *metrics],
        "--require-shadow-agreement",
        "0.5",
    )
    assert code == 3, refused
    assert "not the shadow model" in refused["error"]
    code, accepted = run("--require-shadow-agreement", str(agreement - 0.05))
    assert code == 0, accepted
    assert accepted["changed"] is True
    assert accepted["version"] == candidates["flipping"]


def test_the_report_and_the_gate_read_prometheus_as_the_pipeline_does(
    candidates: dict[str, str], flipping_server: RunningServer, tmp_path: Path
) -> None:
    """A real Prometheus scrapes the ops listener, as in Kubernetes; the report sums its series."""
    rows = REQUESTS * SEGMENTS
    target = flipping_server.ops_url.removeprefix("http://")
    with running_prometheus(find_tool("prometheus"), tmp_path, [target]) as prometheus:
        wait_until(
            lambda: bool(prometheus.query(f"model_shadow_rows_total >= {rows}")),
            60,
            "the shadow's rows scraped",
        )
        source = ["--prometheus", prometheus.url, "--selector", f'job="{JOB}"']
        code, report = registry_command(candidates, "shadow_report", *source)
        assert code == 0, report
        assert report["rows"]["compared"] == rows
        assert abs(report["fields"]["label"]["agreement"] - (1 - FLIPPED_SHARE)) <= SHARE_TOLERANCE
        code, refused = registry_command(
            candidates,
            "promote",
            *["--name", candidates["name"], "--version", candidates["flipping"]],
            *["--require-shadow-agreement", str(1 - FLIPPED_SHARE + 0.05)],
            *["--shadow-prometheus", prometheus.url, "--shadow-selector", f'job="{JOB}"'],
        )
        assert code == 3, refused
        assert "below" in refused["error"]


@pytest.fixture(scope="module")
def unshadowed_server(
    candidates: dict[str, str],
    servers: list[RunningServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningServer:
    """The same served model, one worker, no shadow: the client latency to compare with."""
    server = start_with_shadow(
        candidates, servers, tmp_path_factory.mktemp("unshadowed"), None, workers=1
    )
    wait_ready(server)
    return server


@pytest.mark.parametrize("role", ["failing", "slow"])
def test_a_failing_or_slow_candidate_never_changes_what_the_client_gets(
    candidates: dict[str, str],
    servers: list[RunningServer],
    unshadowed_server: RunningServer,
    tmp_path: Path,
    role: str,
) -> None:
    """Answers and statuses are the served model's (checked in `score`). The client's
    latency is measured against the same model served without a shadow, requests
    alternating between the two: the stated bound is that the shadow adds less than half
    the candidate's sleep to the median (were the client held for it, every request would
    take the whole sleep or longer). The figures are printed, not asserted finer: the
    machine is shared."""
    server = start_with_shadow(candidates, servers, tmp_path, role, workers=1)
    wait_ready(server)
    requests = 30
    waits: list[float] = []
    unshadowed_waits: list[float] = []
    for number in range(requests):
        waits.append(score(server, number)[1])
        unshadowed_waits.append(score(unshadowed_server, number)[1])
    median = statistics.median(waits)
    unshadowed_median = statistics.median(unshadowed_waits)
    print(
        f"{role} shadow: client latency median {median * 1000:.1f} ms "
        f"(no shadow {unshadowed_median * 1000:.1f} ms), "
        f"max {max(waits) * 1000:.0f} ms (no shadow {max(unshadowed_waits) * 1000:.0f} ms)"
    )
    assert median < unshadowed_median + SLOW_PREDICT_SECONDS / 2
    if role == "failing":
        wait_all_offered(server, requests * SEGMENTS)
        assert server.metric("model_shadow_rows_total", outcome="failed") == requests * SEGMENTS
        assert server.metric("model_shadow_errors_total") == requests
        lines = [line for line in server.log_lines() if "shadow model" in str(line["message"])]
        assert any("RuntimeError" in str(line["message"]) for line in lines)
        assert "fails, as it was built to" not in server.log_path.read_text()
    else:
        # Queued work (a predict is SLOW_PREDICT_SECONDS) does not hold up a graceful stop.
        started = time.monotonic()
        assert stop(server) == 0
        stopped_in = time.monotonic() - started
        assert stopped_in < requests * SLOW_PREDICT_SECONDS / 2, stopped_in


def test_a_full_shadow_queue_drops_and_counts(
    candidates: dict[str, str], servers: list[RunningServer], tmp_path: Path
) -> None:
    server = start_with_shadow(
        candidates, servers, tmp_path, "slow", workers=1, SHADOW_QUEUE_SIZE="1"
    )
    wait_ready(server)
    requests = 20
    for number in range(requests):
        score(server, number)
    wait_all_offered(server, requests * SEGMENTS)
    dropped = server.metric("model_shadow_rows_total", outcome="dropped")
    compared = server.metric("model_shadow_rows_total", outcome="compared")
    assert dropped > 0
    assert dropped + compared == requests * SEGMENTS


def test_a_shadow_that_cannot_load_stops_the_start(
    candidates: dict[str, str], servers: list[RunningServer], tmp_path: Path
) -> None:
    missing = f"models:/{candidates['name']}/99"
    registry = RegisteredDemo(candidates["tracking_uri"], candidates["name"], "", "")
    server = start_server(
        registry,
        tmp_path,
        MODEL_URI=f"models:/{candidates['name']}/{candidates['primary']}",
        SHADOW_MODEL_URI=missing,
    )
    servers.append(server)
    assert server.process.wait(timeout=90) == 3
    assert "shadow model did not load" in server.log_path.read_text()
