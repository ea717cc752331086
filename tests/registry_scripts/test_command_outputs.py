"""Every command's contract as a real process: one JSON line on stdout, the documented exit
code, and never a credential in its output, also when the registry is down."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from model_fetch.guardrails import RULES_FILE, sha256_of
from model_fetch.retries import HTTP_DEFAULTS
from model_wrapper.packaging import DEMO_RULES_FILE
from tests.registry_scripts.support import DEMO_TRAINING, FIRST_CALL_ARGS, start_command
from tests.support.ports import free_port

SECRET = "s3cr3t-Pa55word"  # noqa: S105 (made up: the output must never show it)
TOKEN = "tok-never-printed-42"  # noqa: S105 (made up, as above)


def with_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"ci-user:{SECRET}@{parts.netloc}").geturl()


def only_json_line(out: str) -> dict[str, Any]:
    lines = out.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {lines!r}"
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.mark.slow  # starts the commands as processes
def test_unreachable_registry_with_credentials_is_4_from_every_command_and_never_leaks(
    command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """`train --if-missing` included: a registry that does not answer is not an empty one."""
    url = f"http://127.0.0.1:{free_port()}"
    env = command_env(MLFLOW_TRACKING_URI=with_credentials(url), MLFLOW_TRACKING_TOKEN=TOKEN)
    for key in HTTP_DEFAULTS:  # the commands' own bounded retries are under test
        env.pop(key, None)
    processes = {
        command: start_command(command, argv, env, tmp_path)
        for command, argv in FIRST_CALL_ARGS.items()
    }
    for command, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 4, f"{command}: {out}\n{err}"
        result = only_json_line(out)
        assert (result["ok"], result["exit_code"]) == (False, 4), command
        assert "http://***@127.0.0.1:" in result["error"], command
        assert "unreachable" in result["error"], command
        assert result["tracking_uri"] == f"http://***@{url.removeprefix('http://')}"
        assert "Traceback" not in err, f"{command}: {err}"
        for secret in (SECRET, TOKEN, "ci-user:"):
            assert secret not in out + err, f"{command} printed {secret!r}"
    assert not (tmp_path / "mlruns").exists(), "train --if-missing trained against a dead registry"


@pytest.mark.slow
def test_train_and_export_against_a_real_mlflow_server_print_one_line_and_no_secret(
    mlflow_server: str, command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """MLflow writes "View run ... at: <tracking URI>" on stdout: it must reach stderr only,
    with the credentials in that URI masked."""
    env = command_env(MLFLOW_TRACKING_URI=with_credentials(mlflow_server))
    trees, rows = str(DEMO_TRAINING["n_estimators"]), str(DEMO_TRAINING["n_rows"])
    train = start_command("train", ["--register", "--trees", trees, "--rows", rows], env, tmp_path)
    out, err = train.communicate(timeout=300)
    assert train.returncode == 0, err
    trained = only_json_line(out)
    assert (trained["ok"], trained["trained"]) == (True, True)
    assert "View run" in err
    assert "http://***@127.0.0.1" in err
    assert SECRET not in out + err

    uri = f"models:/credit-risk-scoring/{trained['version']}"
    export = start_command("export", ["--model-uri", uri, "--output", "model"], env, tmp_path)
    out, err = export.communicate(timeout=300)
    assert export.returncode == 0, err
    exported = only_json_line(out)
    assert (exported["ok"], exported["version"]) == (True, trained["version"])
    assert exported["run_id"] == trained["run_id"]
    assert (tmp_path / "model" / "MLmodel").is_file()
    origin = json.loads((tmp_path / "model" / "registry_origin.json").read_text())
    assert origin["resolved_uri"] == uri
    # The demo's business rules, attached through the server's tags, travel with the export.
    assert trained["guardrails"]["sha256"] == sha256_of(DEMO_RULES_FILE.read_text())
    assert (tmp_path / "model" / RULES_FILE).read_text() == DEMO_RULES_FILE.read_text()
    assert SECRET not in out + err


@pytest.mark.slow  # starts the command as a process
def test_export_of_a_missing_model_is_5_with_a_json_line(
    sqlite_registry: str, command_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    argv = ["--model-uri", "models:/no-such-model/1", "--output", "model"]
    process = start_command("export", argv, command_env(), tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 5, err
    assert only_json_line(out)["exit_code"] == 5
