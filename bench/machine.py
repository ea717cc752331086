"""What the numbers were measured on: hardware, versions, revision and how busy it was."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mlflow", "fastapi", "uvicorn", "uvicorn-worker", "gunicorn", "xgboost-cpu", "pandas")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def _revision(root: Path) -> str:
    completed = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_machine(root: Path, wrk_version: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {package: _version(package) for package in PACKAGES},
        "wrk": wrk_version,
        "revision": _revision(root),
        "load_average_at_start": os.getloadavg(),
    }


def machine_lines(machine: dict[str, Any]) -> list[str]:
    """The machine, packages and load of a run, as each bench's report opens with them."""
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    load_start = " ".join(f"{value:.2f}" for value in machine["load_average_at_start"])
    load_end = " ".join(f"{value:.2f}" for value in machine["load_average_at_end"])
    return [
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}, Python {machine['python']}, {machine['wrk']}",
        f"Packages: {packages}; project revision {machine['revision']}",
        f"Load average (1/5/15 min) at start {load_start}, at end {load_end}",
    ]
