"""Every command as a real process: --help, and an unreachable registry failing fast."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from model_fetch.retries import HTTP_DEFAULTS, apply_http_defaults
from tests.registry_scripts.support import FIRST_CALL_ARGS, start_command
from tests.support.ports import free_port

# Every test starts the commands as processes.
pytestmark = pytest.mark.slow

# Python and MLflow take 3-10 s to import on a busy machine; the retries add ~3 s.
# MLflow's own defaults (7 retries, backoff factor 2) would take minutes.
UNREACHABLE_SECONDS = 20.0


def start_all(
    argvs: dict[str, list[str]], env: dict[str, str], cwd: Path
) -> dict[str, subprocess.Popen[str]]:
    """Start one process per command at once: six sequential interpreter starts are slow."""
    return {command: start_command(command, argv, env, cwd) for command, argv in argvs.items()}


def failure_of(process: subprocess.Popen[str], exit_code: int, what: str) -> tuple[str, str]:
    """The one JSON line and the stderr of a command that must exit `exit_code`."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == exit_code, f"{what}: {out}\n{err}"
    (line,) = out.splitlines()
    result = json.loads(line)
    assert (result["ok"], result["exit_code"]) == (False, exit_code)
    return str(result["error"]), err


def test_every_command_documents_itself_and_its_exit_codes(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    processes = start_all({c: ["--help"] for c in FIRST_CALL_ARGS}, command_env(), tmp_path)
    for command, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert f"python -m registry_scripts.{command}" in out
        assert "4 registry unreachable" in out


def test_unreachable_registry_exits_4_with_a_clear_error_from_every_command(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = command_env(MLFLOW_TRACKING_URI=url)
    for key in HTTP_DEFAULTS:  # the commands' own defaults are under test
        env.pop(key, None)
    processes = start_all(FIRST_CALL_ARGS, env, tmp_path)
    for command, process in processes.items():
        error, err = failure_of(process, 4, command)
        assert f"registry at {url} is unreachable" in error
        assert "unreachable" in err


def test_unreachable_registry_gives_up_within_seconds(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """One process alone: interpreter start-up plus the bounded retries."""
    env = command_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    for key in HTTP_DEFAULTS:
        env.pop(key, None)
    started = time.monotonic()
    (process,) = start_all({"status": []}, env, tmp_path).values()
    process.communicate(timeout=120)
    assert process.returncode == 4
    assert time.monotonic() - started < UNREACHABLE_SECONDS


def test_usage_error_is_exit_2_with_a_json_line(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    (process,) = start_all({"promote": ["--version"]}, command_env(), tmp_path).values()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert json.loads(out)["exit_code"] == 2
    assert "usage: python -m registry_scripts.promote" in err


def test_http_defaults_never_override_what_the_user_set() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"}
    apply_http_defaults(environ)
    assert environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]


GATE_USAGE_ERRORS = {
    "floor-nan": (["--floor", "nan"], "gate floor"),
    "floor-inf": (["--floor", "inf"], "gate floor"),
    "floor-above-1": (["--floor", "1.5"], "gate floor"),
    "margin-nan": (["--margin", "nan"], "gate margin"),
    "margin-negative": (["--margin", "-0.01"], "gate margin"),
}


def test_gate_parameters_that_cannot_fail_are_usage_errors_before_any_registry_call(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """`validate --floor nan` would pass every model; the registry is unreachable here, so
    exit 2 (not 4) shows the parameters are refused first."""
    env = command_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    processes = {
        case: start_command("validate", ["--version", "1", *argv], env, tmp_path)
        for case, (argv, _) in GATE_USAGE_ERRORS.items()
    }
    for case, process in processes.items():
        error, _ = failure_of(process, 2, case)
        assert GATE_USAGE_ERRORS[case][1] in error, case
