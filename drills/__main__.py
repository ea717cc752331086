"""`python -m drills [--only NAME ...] [--quick]`: run the drills, write the report.

Without --quick Prometheus scrapes and evaluates at the intervals of
ops/prometheus/prometheus.yml; --quick uses 1 s for both and shorter waits (CI's drill).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from drills.failures import FAILURES, FAILURES_BY_NAME
from drills.runner import (
    CLIENT_RATE,
    MTTD_TARGET_SECONDS,
    MTTR_TARGET_SECONDS,
    ROWS_PER_REQUEST,
    Timing,
    as_json,
    run_drill,
)
from drills.stack import (
    ALERTMANAGER_GROUP_WAIT,
    QUICK_INTERVALS,
    MlflowServer,
    register_versions,
    shipped_intervals,
)

FULL_TIMING = Timing(baseline_seconds=35.0, detect_seconds=120.0, recover_seconds=300.0)
QUICK_TIMING = Timing(baseline_seconds=5.0, detect_seconds=60.0, recover_seconds=60.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(FAILURES_BY_NAME))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, help="the JSON report (default: stdout only)")
    args = parser.parse_args(argv)
    failures = [FAILURES_BY_NAME[name] for name in args.only] if args.only else list(FAILURES)
    intervals = QUICK_INTERVALS if args.quick else shipped_intervals()
    timing = QUICK_TIMING if args.quick else FULL_TIMING
    results = []
    started = time.time()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="drills-") as root:
        workroot = Path(root)
        faults_dir = workroot / "faults"
        faults_dir.mkdir()
        registry = MlflowServer(workroot)
        registry.start()
        try:
            versions = register_versions(
                registry, faults_dir, canaries=any(f.needs_canaries for f in failures)
            )
            for failure in failures:
                print(f"drill {failure.name} ...", file=sys.stderr, flush=True)
                result = run_drill(
                    failure, registry, versions, faults_dir, intervals, timing, workroot
                )
                print(json.dumps(as_json(result)), file=sys.stderr, flush=True)
                results.append(result)
        finally:
            registry.stop()
    report = {
        "command": "python -m drills"
        + (" --quick" if args.quick else "")
        + "".join(f" --only {name}" for name in args.only or ()),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # The machine may be shared: its load (1, 5, 15 min) when the run began and ended.
            "load_average_start": [round(load, 2) for load in load_at_start],
            "load_average_end": [round(load, 2) for load in os.getloadavg()],
        },
        "prometheus": {
            "scrape_interval": intervals.scrape,
            "evaluation_interval": intervals.evaluation,
        },
        "alertmanager_group_wait": ALERTMANAGER_GROUP_WAIT,
        "client": {"requests_per_second": CLIENT_RATE, "rows_per_request": ROWS_PER_REQUEST},
        "targets": {"mttd_seconds": MTTD_TARGET_SECONDS, "mttr_seconds": MTTR_TARGET_SECONDS},
        "waits": {
            "detect_seconds": timing.detect_seconds,
            "recover_seconds": timing.recover_seconds,
        },
        "drills": [as_json(result) for result in results],
    }
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
