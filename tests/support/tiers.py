"""The fast tier (`make test-fast`): the tests that start no process, and the check of that.

A test that starts a process, a server or a tool, is marked `slow`: by tests/conftest.py
when it uses a fixture that starts one (PROCESS_FIXTURES, directly or through another
fixture), by hand where the test itself starts one. `make test-fast` deselects them. Every
other test runs with a process check armed, under `make test` as under `make test-fast`:
starting a process fails it, so a slow test cannot slip into the fast tier unnoticed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SLOW = "slow"

# Fixtures that start a process, wherever they are defined.
PROCESS_FIXTURES = frozenset(
    {
        "start",  # tests/app: the production command
        "mlflow_server",  # tests/registry_scripts: `mlflow server`
        "rendered",  # tests/deploy: `kubectl kustomize`
        "pin_release",  # tests/deploy: k8s/pin-release.sh
        "demo_registry",  # tests/deploy: trains in `python -m tests.deploy.registry`
        "promtool",  # tests/ops: promtool, for the tests that run it
        "prometheus",  # tests/ops: Prometheus, for the tests that run it
        "job_venv",  # tests/registry_scripts: the pipeline job's virtualenv (`python -m venv`)
    }
)

# Tests that start a process themselves in modules another change is editing (tests/ops):
# marked here until they are marked in place.
MARKED_HERE = frozenset(
    {
        # `kubectl kustomize`
        "tests/ops/test_canary_analysis.py::"
        "test_every_template_metric_is_inconclusive_without_canary_traffic",
        "tests/ops/test_canary_analysis.py::"
        "test_template_queries_read_only_metrics_labels_and_routes_the_app_exports",
        "tests/ops/test_canary_analysis.py::"
        "test_every_analysis_of_the_rollout_resolves_to_metrics_argo_accepts",
    }
)

# What a fast test may start all the same: MLflow tags a process's first run with the
# source commit, running `git` through GitPython, in whichever test logs that run.
ALLOWED_COMMANDS = frozenset({"git"})

# The audit events (sys.audit) that start a process, and where each has its command.
_COMMAND_ARGUMENT = {
    "subprocess.Popen": 1,  # (executable, args, cwd, env)
    "os.posix_spawn": 1,  # (path, argv, env)
    "os.spawn": 2,  # (mode, path, args, env)
    "os.exec": 1,  # (path, args, env)
    "os.system": 0,  # (command,)
    "pty.spawn": 0,  # (argv,)
    "os.fork": None,
    "os.forkpty": None,
}


class ProcessStartedError(RuntimeError):
    """A test of the fast tier started a process."""


def mark_slow(items: Iterable[pytest.Item]) -> None:
    """Mark `slow` every test that uses a fixture starting a process, or is MARKED_HERE."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & PROCESS_FIXTURES or item.nodeid.split("[")[0] in MARKED_HERE:
            item.add_marker(SLOW)


class ProcessCheck:
    """An audit hook that refuses to start a process while a fast test runs, and keeps
    what was refused (in case the test swallowed the error)."""

    def __init__(self) -> None:
        self.running: str | None = None  # the fast test being run, if any
        self.refused: list[str] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if self.running is None or event not in _COMMAND_ARGUMENT:
            return
        command = _command(event, args)
        if command and Path(command[0]).name in ALLOWED_COMMANDS:
            return
        shown = " ".join(command)[:200] or event
        self.refused.append(shown)
        raise ProcessStartedError(
            f"{self.running} starts a process ({shown}) but is not marked {SLOW}: mark it, "
            f"or the fixture that starts it (tests/support/tiers.py)"
        )

    @contextmanager
    def armed(self, item: pytest.Item) -> Iterator[None]:
        """Armed while a test not marked slow is set up, run and torn down."""
        fast = item.get_closest_marker(SLOW) is None
        self.running = item.nodeid if fast else None
        try:
            yield
        finally:
            self.running = None

    def fail_report(self, report: pytest.TestReport) -> None:
        """Fail the report of the phase that tried to start a process, whatever the test
        made of the refusal."""
        if not self.refused:
            return
        refused, self.refused = self.refused, []
        if report.failed:
            return  # the refusal's error is the failure shown
        report.outcome = "failed"
        report.longrepr = (
            f"{report.nodeid} tried to start a process but is not marked {SLOW}: "
            + "; ".join(refused)
        )


def _command(event: str, args: tuple[object, ...]) -> list[str]:
    index = _COMMAND_ARGUMENT[event]
    if index is None or len(args) <= index:
        return []
    command = args[index]
    if isinstance(command, bytes):
        command = command.decode(errors="replace")
    if isinstance(command, str | Path):
        return str(command).split()
    if isinstance(command, list | tuple):
        return [str(part) for part in command]
    return []


PROCESS_CHECK = ProcessCheck()
_installed: list[ProcessCheck] = []


def install() -> None:
    """Install the check, once per process: an audit hook cannot be removed."""
    if not _installed:
        sys.addaudithook(PROCESS_CHECK)
        _installed.append(PROCESS_CHECK)
