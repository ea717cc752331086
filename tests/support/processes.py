"""Processes a test starts: each in its own process group, logged to a file, always reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from tests.support import PROJECT_ROOT


def start_process(
    command: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    *,
    cwd: Path = PROJECT_ROOT,
    inherit: Callable[[str], bool] = lambda key: True,
) -> subprocess.Popen[bytes]:
    """`command` with this environment's variables that `inherit` keeps, then `env`;
    stdout and stderr go to `log_path`. Its own process group, so its children stop with it."""
    environment = {key: value for key, value in os.environ.items() if inherit(key)}
    environment.update(env)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its group, then reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


def stop_process(process: subprocess.Popen[bytes], seconds: float, *, group: bool = True) -> int:
    """SIGTERM and the exit code; past `seconds`, SIGKILL to the group and the timeout raised.

    `group=False` signals the process alone, as Kubernetes signals a container's PID 1: a
    Gunicorn master then stops its own workers.
    """
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise


def stop_group(process: subprocess.Popen[bytes], seconds: float) -> None:
    """SIGTERM the process's whole group, SIGKILL what is left of it after `seconds`; returns
    once every process of the group is gone (or 5 s after the SIGKILL), never raises.

    For a benchmark's servers: the next measurement must not share the CPU with the last
    server's stragglers, whichever process of the group led it.
    """
    _signal_group(process, signal.SIGTERM)
    if not _wait_group_gone(process, seconds):
        _signal_group(process, signal.SIGKILL)
        _wait_group_gone(process, 5.0)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # Started with a new session, so the leader's pid is the group id.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _wait_group_gone(process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so it does not linger as a zombie
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def run_module(module: str, *args: str, timeout: float = 300) -> str:
    """`python -m module args` from the project root; its stdout, or a failure with stderr."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout
