"""One drill from start to end: the stack up, a steady client, the failure injected, the
alert and the recovery awaited (each within a bound), the measurements taken."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from drills.client import SteadyClient
from drills.failures import DrillContext, Failure
from drills.stack import Intervals, MlflowServer, ServingPod, running_monitoring
from registry_scripts.demo_data import LABEL, make_credit_dataset

MTTD_TARGET_SECONDS = 60.0
MTTR_TARGET_SECONDS = 300.0
ROWS_PER_REQUEST = 5
CLIENT_RATE = 4.0  # requests a second
# After the recovery, how long alerts that were already on their way may still arrive.
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class Timing:
    """How long a drill waits for each phase."""

    baseline_seconds: float  # traffic before the injection (rates need two scrapes)
    detect_seconds: float  # for a matching alert, before recovering anyway
    recover_seconds: float  # for the clients to be answered correctly again


@dataclass
class DrillResult:
    name: str
    failure: str
    expected_alerts: list[str]
    alerts_fired: dict[str, float]  # alert name -> seconds after the injection
    detected_by: str | None
    mttd_seconds: float | None
    recovery: str
    mttr_seconds: float | None
    failed_requests: int  # wrong or missing answers from the injection to the recovery
    requests: int  # every request sent from the injection to the end of the drill
    mttd_met: bool
    mttr_met: bool
    notes: list[str]


def client_bodies() -> list[bytes]:
    """Applicants drawn like the training data (so the drift checks see no drift from the
    client itself), ROWS_PER_REQUEST a request."""
    rows = make_credit_dataset(n_rows=40 * ROWS_PER_REQUEST, seed=11).drop(columns=[LABEL])
    records = json.loads(rows.to_json(orient="records"))
    return [
        json.dumps({"dataframe_records": records[i : i + ROWS_PER_REQUEST]}).encode()
        for i in range(0, len(records), ROWS_PER_REQUEST)
    ]


def run_drill(
    failure: Failure,
    registry: MlflowServer,
    versions: dict[str, str],
    faults_dir: Path,
    intervals: Intervals,
    timing: Timing,
    workroot: Path,
) -> DrillResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"{failure.name}-", dir=workroot))
    pod = ServingPod(workdir, registry, versions["name"])
    baseline_seconds = max(timing.baseline_seconds, failure.baseline_seconds)
    cap = baseline_seconds + timing.detect_seconds + timing.recover_seconds + 300
    client = SteadyClient(pod.base_url, client_bodies(), rate=CLIENT_RATE)
    context = DrillContext(pod, registry, versions, faults_dir, client)
    context.promote(failure.base_role)
    failure.setup(context)
    try:
        pod.start()
        pod.wait_ready()
        client.capture_reference()
        with running_monitoring(workdir, f"127.0.0.1:{pod.ops_port}", intervals) as alerts:
            client.run(cap)
            time.sleep(baseline_seconds)
            injected = time.monotonic()
            failure.inject(context)
            detect_by = injected + timing.detect_seconds
            while time.monotonic() < detect_by and not alerts.first_firing(
                set(failure.alerts), injected
            ):
                time.sleep(0.25)
            failure.recover(context)
            recover_by = injected + timing.recover_seconds
            while time.monotonic() < recover_by and client.recovered_at(injected) is None:
                time.sleep(0.5)
            time.sleep(SETTLE_SECONDS)
            client.stop()
            detected = alerts.first_firing(set(failure.alerts), injected)
            fired = {
                name: round(at - injected, 1) for name, at in alerts.firing_since(injected).items()
            }
    finally:
        client.stop()
        pod.stop()
        failure.cleanup(context)
    recovered = client.recovered_at(injected)
    failed, _ = client.failed_between(injected, recovered or time.monotonic())
    _, requests = client.failed_between(injected, time.monotonic())
    mttd = None if detected is None else round(detected.at - injected, 1)
    mttr = None if recovered is None else round(recovered - injected, 1)
    return DrillResult(
        name=failure.name,
        failure=failure.description,
        expected_alerts=sorted(failure.alerts),
        alerts_fired=fired,
        detected_by=None if detected is None else detected.alertname,
        mttd_seconds=mttd,
        recovery=failure.recovery,
        mttr_seconds=mttr,
        failed_requests=failed,
        requests=requests,
        mttd_met=mttd is not None and mttd <= MTTD_TARGET_SECONDS,
        mttr_met=mttr is not None and mttr <= MTTR_TARGET_SECONDS,
        notes=context.notes,
    )


def as_json(result: DrillResult) -> dict[str, object]:
    return asdict(result)
