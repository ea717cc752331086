"""k8s/batch: the batch scoring CronJob, rendered, against the same validators as the
overlays (strict Kubernetes schemas, checkov) and the command it runs."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from batch_scoring.__main__ import build_parser

from .manifests import K8S, Manifest, venv_tool
from .validators import KUBERNETES_VERSIONS, checkov_findings, validate_strict

# Every test renders with `kubectl kustomize`, then starts a validator.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cronjob() -> list[Manifest]:
    out = subprocess.run(
        [venv_tool("kubectl"), "kustomize", str(K8S / "batch")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_cronjob_is_valid_in_strict_mode(
    cronjob: list[Manifest], version: str, tmp_path: Path
) -> None:
    assert [doc["kind"] for doc in cronjob] == ["CronJob"]
    assert validate_strict(cronjob, version, tmp_path) == []


def test_the_cronjob_passes_checkov(cronjob: list[Manifest], tmp_path: Path) -> None:
    assert checkov_findings(cronjob, tmp_path, "kubernetes") == ""


def test_the_cronjob_runs_the_batch_command_as_its_parser_reads_it(
    cronjob: list[Manifest],
) -> None:
    """One run at a time; the exit codes no retry can fix end the Job; the arguments are
    ones the command takes."""
    (job,) = cronjob
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = job["spec"]["jobTemplate"]["spec"]
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["onExitCodes"]["values"] == [1, 2, 3, 5]
    (container,) = spec["template"]["spec"]["containers"]
    assert rule["onExitCodes"]["containerName"] == container["name"]
    command = container["args"][0]
    for variable in container["env"]:
        if "value" in variable:
            command = command.replace(f"${variable['name']}", variable["value"])
    words = shlex.split(command)
    assert words[:3] == ["exec", "python", "-m"]
    assert words[3] == "batch_scoring"
    args = build_parser().parse_args(words[4:])
    assert args.workers == int(container["resources"]["limits"]["cpu"])
    assert args.engine == "local"
    assert args.model == "models:/credit-risk-scoring/Production"
    assert args.max_reject_share == 0.01
