"""The load generator: wrk, POSTing one body at fixed concurrency for a fixed time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("post.lua")
RESULT_PREFIX = "BENCH_RESULT "
# Far above any latency we expect, so slow answers are measured rather than dropped as
# timeouts (wrk leaves timed-out requests out of its latency percentiles).
REQUEST_TIMEOUT_SECONDS = 30
INSTALL_HINT = "wrk is not installed; install it with: apt-get update && apt-get install -y wrk"


class LoadGeneratorError(RuntimeError):
    """wrk is missing or did not produce a result."""


@dataclass(frozen=True)
class LoadResult:
    """One wrk run. Latencies are wrk's, over answered requests (any status)."""

    duration_s: float
    requests: int  # answered, any status
    status_errors: int  # answers with status >= 400
    socket_errors: int  # connect, read and write errors and timeouts
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    @property
    def requests_per_second(self) -> float:
        """Successful answers per second: a fast error must not count as throughput."""
        return (self.requests - self.status_errors) / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "errors": self.errors,
            "requests_per_second": self.requests_per_second,
        }


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadGeneratorError(INSTALL_HINT)
    return path


def wrk_version(wrk: str) -> str:
    """`wrk debian/4.1.0-3` from the banner `wrk --version` prints (it then exits 1)."""
    completed = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return " ".join((completed.stdout or completed.stderr).split()[:2])


def wrk_command(wrk: str, url: str, connections: int, duration_s: int) -> list[str]:
    """wrk POSTing the body named by BENCH_BODY_FILE; it needs a connection per thread."""
    return [
        wrk,
        f"--threads={min(2, connections)}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
        f"--script={LUA_SCRIPT}",
        url,
    ]


def run_load(wrk: str, url: str, body_file: Path, connections: int, duration_s: int) -> LoadResult:
    """Keep `connections` requests in flight against `url` for `duration_s` seconds."""
    completed = subprocess.run(
        wrk_command(wrk, url, connections, duration_s),
        env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        timeout=duration_s + REQUEST_TIMEOUT_SECONDS + 30,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise LoadGeneratorError(
            f"wrk exited {completed.returncode} without a result: "
            f"{(completed.stderr or completed.stdout).strip()[-500:]}"
        )
    raw = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return LoadResult(
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        status_errors=raw["status_errors"],
        socket_errors=sum(
            raw[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        p50_ms=raw["p50_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        mean_ms=raw["mean_us"] / 1e3,
        max_ms=raw["max_us"] / 1e3,
    )
