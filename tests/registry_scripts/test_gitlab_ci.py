"""The GitLab pipeline: schema-valid, secret-free, and its registry lines proven by running them.

The pipeline test runs the jobs' `script:` lines with bash, in job order, against a
temporary registry, with CI-like variables, GitLab's dotenv hand-over between jobs and a
fake kubectl (tests/registry_scripts/fake_kubectl.py) standing in for the cluster.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from registry_scripts.promote import promote_version
from tests.registry_scripts.support import PROJECT_ROOT, TEST_FLOOR

CI_FILE = PROJECT_ROOT / ".gitlab-ci.yml"
KEYWORDS = {"default", "include", "stages", "variables", "workflow"}
# Lines that set up the job's environment; the test's virtualenv replaces them.
SETUP_LINE = re.compile(r"^/opt/venv/bin/pip install ")
JOB_TIMEOUT_SECONDS = 300
NAME = "credit-risk-scoring"


def load_ci() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CI_FILE.read_text())
    return document


def jobs(ci: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in ci.items() if k not in KEYWORDS and not k.startswith(".")}


def lines_of(definition: dict[str, Any], key: str = "script") -> list[str]:
    return [str(line) for line in definition.get(key, [])]


def registry_lines(ci: dict[str, Any]) -> set[str]:
    """Every script line, in jobs and templates, that runs our registry commands."""
    return {
        line
        for name, definition in ci.items()
        if name not in KEYWORDS
        for key in ("before_script", "script", "after_script")
        for line in lines_of(definition, key)
        if "registry_scripts" in line
    }


def test_ci_file_validates_against_gitlabs_schema() -> None:
    command = [
        str(Path(sys.executable).parent / "check-jsonschema"),
        *("--builtin-schema", "vendor.gitlab-ci"),
        # Resolves GitLab's !reference tags before validating.
        *("--data-transform", "gitlab-ci"),
        str(CI_FILE),
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_needs_and_extends_name_real_jobs_and_stages() -> None:
    """The schema does not check references between jobs; this does."""
    ci = load_ci()
    for name, job in jobs(ci).items():
        assert job["stage"] in ci["stages"], name
        for needed in job.get("needs", []):
            assert needed in jobs(ci), f"{name} needs unknown job {needed}"
        extends = job.get("extends", [])
        for template in [extends] if isinstance(extends, str) else extends:
            assert template in ci, f"{name} extends unknown {template}"


def test_no_credentials_in_the_file() -> None:
    ci = load_ci()
    text = CI_FILE.read_text()
    secret_names = re.compile(r"PASSWORD|TOKEN|SECRET|USERNAME|KUBECONFIG|KEY")
    defined = [
        *ci["variables"],
        *(v for job in jobs(ci).values() for v in job.get("variables", {})),
    ]
    assert not [name for name in defined if secret_names.search(name)]
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"
    assert not re.search(r"(?i)(password|token)\s*[:=]\s*['\"]?\w", text.split("\nworkflow:")[1])


def test_test_job_runs_the_readme_test_command() -> None:
    assert lines_of(jobs(load_ci())["test"]) == ["make test"]


def test_every_registry_line_sits_in_a_job_script() -> None:
    """The pipeline test runs `script:` lines; setup sections must not call our code."""
    ci = load_ci()
    in_scripts = {line for job in jobs(ci).values() for line in lines_of(job)}
    assert registry_lines(ci) <= in_scripts


class Pipeline:
    """Runs jobs of .gitlab-ci.yml like a runner would, minus containers and GitLab."""

    def __init__(self, workdir: Path, variables: dict[str, str]) -> None:
        self.ci = load_ci()
        self.workdir = workdir
        self.variables = variables
        self.completed_lines: set[str] = set()

    def run(self, job_name: str, **extra: str) -> subprocess.CompletedProcess[str]:
        job = jobs(self.ci)[job_name]
        lines = [line for line in lines_of(job) if not SETUP_LINE.match(line)]
        completed = subprocess.run(
            ["bash", "-c", "\n".join(["set -eo pipefail", *lines])],
            cwd=self.workdir,
            env={**self.variables, **extra},
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT_SECONDS,
        )
        if completed.returncode == 0:
            self.completed_lines.update(lines)
            # GitLab hands a job's dotenv report to the jobs after it.
            dotenv = job.get("artifacts", {}).get("reports", {}).get("dotenv")
            if dotenv:
                for line in (self.workdir / dotenv).read_text().splitlines():
                    key, _, value = line.partition("=")
                    self.variables[key] = value
        return completed


def expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), ""), value)


@pytest.fixture
def pipeline(
    sqlite_registry: str, tmp_path: Path, command_env: Callable[..., dict[str, str]]
) -> Pipeline:
    """A checkout-like work directory, CI variables, `python` and a fake `kubectl` on PATH."""
    workdir = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "k8s", workdir / "k8s")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrappers = {
        "python": f'exec "{sys.executable}" "$@"',
        "kubectl": f'exec "{sys.executable}" "{Path(__file__).parent / "fake_kubectl.py"}" "$@"',
    }
    for name, body in wrappers.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = command_env()
    variables = {
        "PATH": f"{bin_dir}:{env['PATH']}",
        "PYTHONPATH": env["PYTHONPATH"],
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": sqlite_registry,
        "REAL_KUBECTL": str(Path(sys.executable).parent / "kubectl"),
        "FAKE_KUBE_STATE": str(tmp_path / "cluster.json"),
        "CI_PROJECT_DIR": str(workdir),
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_SHA": "abc1234def5678abc1234def5678abc1234def56",
        "CI_COMMIT_SHORT_SHA": "abc1234",
        "CI_REGISTRY_IMAGE": "registry.example.com/ml/serving",
        "CI_PIPELINE_ID": "42",
        "CI_PIPELINE_URL": "https://gitlab.example.com/ml/serving/-/pipelines/42",
        "GITLAB_USER_LOGIN": "release-manager",
    }
    for key, value in load_ci()["variables"].items():
        raw = value["value"] if isinstance(value, dict) else value
        variables[key] = expand(str(raw), variables)
    # Set from the Run pipeline form: the test's small models score lower than the demo's.
    variables["GATE_FLOOR"] = TEST_FLOOR
    return Pipeline(workdir, variables)


def cluster(pipeline: Pipeline) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(Path(pipeline.variables["FAKE_KUBE_STATE"]).read_text())
    return state


def production(client: MlflowClient) -> tuple[int | None, list[str]]:
    staged = [
        str(v.version)
        for v in client.search_model_versions(f"name = '{NAME}'")
        if v.current_stage == "Production"
    ]
    return client.get_registered_model(NAME).aliases.get("production"), staged


@pytest.mark.slow
def test_release_and_rollback_jobs_keep_cluster_and_registry_in_step(
    pipeline: Pipeline, client: MlflowClient, register_demo: Callable[..., str]
) -> None:
    v1 = register_demo()
    promote_version(client, NAME, v1)
    v2 = register_demo()
    Path(pipeline.variables["FAKE_KUBE_STATE"]).write_text(
        json.dumps({"revisions": [v1], "calls": []})
    )

    def run_ok(job: str, **extra: str) -> None:
        completed = pipeline.run(job, **extra)
        assert completed.returncode == 0, f"{job}:\n{completed.stdout}\n{completed.stderr}"

    run_ok("candidate")
    assert pipeline.variables["CANDIDATE_VERSION"] == v2, "latest version when none is given"
    run_ok("validate")
    run_ok("promote")
    run_ok("deploy")

    manifests = (pipeline.workdir / "manifests.yaml").read_text()
    assert f"value: models:/{NAME}/{v2}\n" in manifests
    assert f"image: registry.example.com/ml/serving/credit-risk-serving:abc1234-model-{v2}\n" in (
        manifests
    )
    assert cluster(pipeline)["revisions"] == [v1, v2]
    assert production(client) == (int(v2), [v2])

    # The first attempt undoes the Deployment, then its rollout times out; the retry must
    # not undo again, and must bring the registry to the version the cluster runs.
    flag = pipeline.workdir / "fail-rollout-status-once"
    flag.touch()
    failed = pipeline.run("rollback", FAKE_KUBECTL_FAIL_STATUS_ONCE=str(flag))
    assert failed.returncode != 0
    assert cluster(pipeline)["revisions"] == [v1, v2, v1]
    assert production(client) == (int(v2), [v2])

    run_ok("rollback")
    assert cluster(pipeline)["revisions"] == [v1, v2, v1]
    assert production(client) == (int(v1), [v1])

    assert registry_lines(pipeline.ci) <= pipeline.completed_lines


@pytest.mark.slow
def test_bad_candidate_stops_at_the_gate_and_cannot_be_promoted(
    pipeline: Pipeline, client: MlflowClient, register_demo: Callable[..., str]
) -> None:
    v1 = register_demo()
    promote_version(client, NAME, v1)
    bad = register_demo(bad=True)
    register_demo()  # a newer version: MODEL_VERSION must win over "latest"

    assert pipeline.run("candidate", MODEL_VERSION=bad).returncode == 0
    assert pipeline.variables["CANDIDATE_VERSION"] == bad
    gate = pipeline.run("validate")
    assert gate.returncode == 3, gate.stderr
    assert "below the floor" in json.loads(gate.stdout)["reason"]
    assert pipeline.run("promote").returncode == 3
    assert production(client) == (int(v1), [v1])
