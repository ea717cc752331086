"""A pod's cold start, measured: from `podman run` to the container's /readyz answering 200,
with the model baked into the image and with the model fetched from the registry at start.

`python -m drills.cold_start [--runs N] [--output PATH]`. Builds the image from the Dockerfile
with podman the way tests/deploy/test_image.py does (a debootstrap base standing in for
python:3.11-slim, wheels from requirements.lock; both cached under ~/.cache), on a private
podman store removed afterwards. Needs root, podman, buildah, runc and debootstrap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.deploy.test_image import (
    BAKED_VERSION,
    FETCHED_VERSION,
    IMAGE,
    PIP_CONF,
    Podman,
    base_root_filesystem,
    pinned_pod_environment,
    pod,
    wheelhouse,
)
from tests.support import PROJECT_ROOT
from tests.support.processes import run_module


def build_image(podman: Podman, registry: Path, work: Path) -> float:
    """The baked target, as tests/deploy/test_image.py builds it; the build's seconds."""
    podman("import", "--quiet", base_root_filesystem(), "localhost/debian-python3:test")
    (work / "pip.conf").write_text(PIP_CONF)
    (work / "mlflow.env").write_text(f"MLFLOW_TRACKING_URI=sqlite:///{registry}/mlflow.db\n")
    started = time.monotonic()
    podman(
        "build",
        "--format=docker",
        "--build-arg=BASE_IMAGE=localhost/debian-python3:test",
        "--target=baked",
        f"--build-arg=BAKED_MODEL_URI=models:/credit-risk-scoring/{BAKED_VERSION}",
        f"--secret=id=mlflow,src={work / 'mlflow.env'}",
        f"--volume={registry}:{registry}",
        f"--volume={wheelhouse()}:/wheels:ro",
        f"--volume={work / 'pip.conf'}:/etc/pip.conf:ro",
        f"--tag={IMAGE}",
        PROJECT_ROOT,
        timeout=1200,
    )
    return time.monotonic() - started


def time_to_ready(podman: Podman, env: dict[str, str], *extra: str) -> float:
    """Seconds from `podman run` to /readyz 200, with the pod's securityContext and volumes
    (the image test's `pod`)."""
    started = time.monotonic()
    with pod(podman, IMAGE, env, *extra):
        return time.monotonic() - started


def measure(podman: Podman, registry: Path, work: Path, runs: int) -> dict[str, object]:
    """Build the image, then start it `runs` times with each way of getting the model."""
    build_seconds = build_image(podman, registry, work)
    baked_env = pinned_pod_environment(work / "baked", BAKED_VERSION, "--baked")
    fetched_env = pinned_pod_environment(work / "fetched", FETCHED_VERSION)
    fetched_env["MLFLOW_TRACKING_URI"] = f"sqlite:///{registry}/mlflow.db"
    baked = [time_to_ready(podman, baked_env) for _ in range(runs)]
    fetched = [
        time_to_ready(podman, fetched_env, f"--volume={registry}:{registry}") for _ in range(runs)
    ]
    return {
        "command": f"python -m drills.cold_start --runs {runs}",
        "image_build_seconds": round(build_seconds, 1),
        "baked_seconds": [round(s, 1) for s in baked],
        "baked_median_seconds": round(statistics.median(baked), 1),
        "fetched_seconds": [round(s, 1) for s in fetched],
        "fetched_median_seconds": round(statistics.median(fetched), 1),
        "registry": "SQLite registry directory mounted into the container (read at start)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills.cold_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    # podman may leave its storage mounted for a moment: the directory goes when it can.
    with tempfile.TemporaryDirectory(prefix="cold-start-", ignore_cleanup_errors=True) as root:
        work = Path(root)
        registry = work / "registry"
        registry.mkdir()
        run_module("tests.deploy.registry", str(registry))
        for path in (registry, *registry.rglob("*")):  # the container's user is not ours
            path.chmod(0o777 if path.is_dir() else 0o666)
        (work / "podman").mkdir()
        podman = Podman(work / "podman")
        try:
            report = measure(podman, registry, work, args.runs)
        finally:
            podman.remove_everything()
            overlay = work / "podman" / "storage" / "overlay"
            subprocess.run(["umount", overlay], check=False, capture_output=True, timeout=60)
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
