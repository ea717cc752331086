"""The GitLab pipeline file: schema-valid, secret-free, jobs that reference real jobs.

test_gitlab_pipeline.py runs the jobs themselves, through gitlab-ci-local.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import PROJECT_ROOT

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


@pytest.mark.slow  # starts check-jsonschema
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
    for name in jobs(ci):
        job = expanded(ci, name)
        assert job["stage"] in ci["stages"], name
        for needed in job.get("needs", []):
            assert needed in jobs(ci), f"{name} needs unknown job {needed}"


def expanded(ci: dict[str, Any], name: str) -> dict[str, Any]:
    """A job with its `extends` templates merged in (top-level keys, later wins)."""
    job: dict[str, Any] = ci[name]
    extends = job.get("extends", [])
    merged: dict[str, Any] = {}
    for template in [extends] if isinstance(extends, str) else extends:
        assert template in ci, f"{name} extends unknown {template}"
        merged |= expanded(ci, template)
    return merged | job


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


def test_test_job_runs_what_ci_runs() -> None:
    """.ci/run installs the system tools the tests need; `make test` alone would miss them."""
    assert lines_of(jobs(load_ci())["test"]) == ["bash .ci/run"]


def test_every_registry_line_sits_in_a_job_script() -> None:
    """Setup sections must not call our code: a failing before_script hides which step failed."""
    ci = load_ci()
    in_scripts = {line for job in jobs(ci).values() for line in lines_of(job)}
    assert registry_lines(ci) <= in_scripts
