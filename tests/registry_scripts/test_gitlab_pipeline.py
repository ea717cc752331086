"""The GitLab pipeline run as GitLab would run it: gitlab-ci-local, a real `mlflow server`.

gitlab-ci-local (pinned in tests/pipeline, installed by `make test`) reads .gitlab-ci.yml
with GitLab's rules, `needs`, manual jobs, dotenv reports and variables, and runs the jobs'
scripts with its shell executor in a temporary git checkout of this working tree. Two
stand-ins take the place of what cannot run here: fake_kubectl.py for the cluster and
fake_buildah.py for the image build and registry. The Python jobs get an environment
equivalent to the one their before_script builds (the project's requirements, pip with no
index), so only the job's own lines run, and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from registry_scripts._promotion import promote_version
from tests.registry_scripts.support import TEST_FLOOR, production, register_demo_version
from tests.support import PROJECT_ROOT
from tests.support.ci import missing
from tests.support.stand_ins import install_stand_in

NAME = "credit-risk-scoring"
GITLAB_CI_LOCAL = PROJECT_ROOT / "tests" / "pipeline" / "node_modules" / ".bin" / "gitlab-ci-local"
# The release jobs, named: `--needs deploy` would also run `test` (candidate has no needs,
# so it waits for the test stage), and that is this test suite. --manual promote is the
# click on the manual job's button.
RELEASE_JOBS = ("candidate", "build-image", "validate", "promote", "deploy", "--manual", "promote")
STAND_INS = {
    "kubectl": "tests.registry_scripts.fake_kubectl",
    "buildah": "tests.registry_scripts.fake_buildah",
}
REGISTRY = "registry.example.com"
IMAGE_REPOSITORY = f"{REGISTRY}/ml/credit-risk-serving/credit-risk-serving"
# Bounded: a release run is five jobs, each a few command starts on two busy cores.
PIPELINE_SECONDS = 600


def _require_tools() -> None:
    absent = [tool for tool in ("node", "git", "rsync") if shutil.which(tool) is None]
    if not GITLAB_CI_LOCAL.exists():
        absent.append(f"{GITLAB_CI_LOCAL} (make test installs it)")
    if absent:
        missing(f"the pipeline test needs {', '.join(absent)}")


def _git(checkout: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=checkout,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree (tracked and new files, ignored ones left out) as a git checkout
    of `main` with an `origin` remote, as a runner has it."""
    _require_tools()
    checkout = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / relative
        if source.is_file():
            (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / relative)
    _git(checkout, "init", "-q", "-b", "main")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "-q", "-m", "checkout")
    _git(
        checkout, "remote", "add", "origin", "https://gitlab.example.com/ml/credit-risk-serving.git"
    )
    return checkout


@pytest.fixture(scope="module")
def job_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv that sees this interpreter's packages: what the jobs' before_script
    would install from requirements.txt, already there."""
    venv = tmp_path_factory.mktemp("job") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    (purelib,) = venv.glob("lib/python3*/site-packages")
    (purelib / "project-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


class Pipeline:
    """gitlab-ci-local in the checkout, with the stand-ins first on PATH."""

    def __init__(self, checkout: Path, venv: Path, workdir: Path, tracking_uri: str) -> None:
        self.checkout = checkout
        self.cluster_state = workdir / "cluster.json"
        self.image_state = workdir / "images.json"
        stand_ins = workdir / "stand-ins"
        for command, module in STAND_INS.items():
            install_stand_in(stand_ins, command, module)
        self.env = {
            **os.environ,
            "PATH": f"{stand_ins}:{os.environ['PATH']}",
            "REAL_KUBECTL": str(Path(sys.executable).parent / "kubectl"),
            "FAKE_KUBE_STATE": str(self.cluster_state),
            "FAKE_IMAGE_STATE": str(self.image_state),
            # The job environment has every requirement; never reach for an index.
            "PIP_NO_INDEX": "1",
        }
        self.home = workdir / "home"
        self.variables = {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PYTHON_VENV": str(venv),
            "GATE_FLOOR": TEST_FLOOR,  # the test's small models score lower than the demo's
            "CI_REGISTRY": REGISTRY,
            "CI_REGISTRY_IMAGE": f"{REGISTRY}/ml/credit-risk-serving",
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": "job-token",
            "GITLAB_USER_LOGIN": "release-manager",
        }
        # A fresh pipeline: no artifacts or pins from a previous test.
        shutil.rmtree(checkout / ".gitlab-ci-local", ignore_errors=True)
        _git(checkout, "checkout", "--", "k8s")

    def run(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        command = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--home", str(self.home)]
        given = {**self.variables, **variables}
        for key, value in given.items():
            command += ["--variable", f"{key}={value}"]
        # What GitLab itself would set (registry login, user, pipeline source): no warning.
        predefined = [key for key in given if key.startswith(("CI_", "GITLAB_"))]
        command += ["--ignore-predefined-vars", ",".join(predefined)]
        return subprocess.run(
            [*command, *args],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PIPELINE_SECONDS,
        )

    def seed_cluster(self, namespace: str, *versions: str) -> None:
        revisions = [
            {"model-version": v, "image": f"{IMAGE_REPOSITORY}:0000000-model-{v}"} for v in versions
        ]
        self.cluster_state.write_text(json.dumps({"namespace": namespace, "revisions": revisions}))

    def cluster(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.cluster_state.read_text())
        return state

    def images(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.image_state.read_text())
        return state


@pytest.fixture
def pipeline(checkout: Path, job_venv: Path, tmp_path: Path, server_registry: str) -> Pipeline:
    """A fresh pipeline against the session's `mlflow server`, with no model registered."""
    client = MlflowClient(server_registry)
    if client.search_registered_models(f"name = '{NAME}'"):
        client.delete_registered_model(NAME)
    return Pipeline(checkout, job_venv, tmp_path, server_registry)


def models_deployed(pipeline: Pipeline) -> list[str]:
    return [revision["model-version"] for revision in pipeline.cluster()["revisions"]]


def show(completed: subprocess.CompletedProcess[str]) -> str:
    return f"exit {completed.returncode}\n{completed.stdout[-6000:]}\n{completed.stderr[-2000:]}"


def test_jobs_rules_and_needs_as_gitlab_reads_them(
    checkout: Path, job_venv: Path, tmp_path: Path
) -> None:
    """gitlab-ci-local applies GitLab's own checks (e.g. cache:key:files takes one or two
    files) and rules: release jobs on main, manual promote and rollbacks; on MRs only the
    tests and the audit of the locked requirements; on schedules only batch scoring."""
    pipeline = Pipeline(checkout, job_venv, tmp_path, "http://127.0.0.1:9")
    listed = pipeline.run("--list-json")
    assert listed.returncode == 0, show(listed)
    jobs = {job["name"]: job for job in json.loads(listed.stdout)}
    assert {name: job["when"] for name, job in jobs.items()} == {
        "test": "on_success",
        "audit": "on_success",
        "candidate": "on_success",
        "build-image": "on_success",
        "validate": "on_success",
        "shadow-start": "manual",
        "shadow-report": "manual",
        "promote": "manual",
        "deploy": "on_success",
        "rollback-model": "manual",
        "rollback-release": "manual",
        "batch-score": "never",
    }
    needs = {name: [n["job"] for n in job.get("needs") or []] for name, job in jobs.items()}
    assert needs["deploy"] == ["candidate", "build-image", "promote"]
    assert needs["shadow-start"] == ["candidate", "validate"]
    assert needs["rollback-model"] == needs["rollback-release"] == []

    merge_request = pipeline.run("--list-json", CI_PIPELINE_SOURCE="merge_request_event")
    assert merge_request.returncode == 0, show(merge_request)
    # --list-json lists when:never jobs too.
    runs = [job["name"] for job in json.loads(merge_request.stdout) if job["when"] != "never"]
    assert runs == ["test", "audit"]

    schedule = pipeline.run(
        "--list-json",
        CI_PIPELINE_SOURCE="schedule",
        BATCH_INPUT="/data/applicants",
        BATCH_OUTPUT="/data/scores",
    )
    assert schedule.returncode == 0, show(schedule)
    runs = [job["name"] for job in json.loads(schedule.stdout) if job["when"] != "never"]
    assert runs == ["batch-score"]


def _first_version_in_production(client: MlflowClient) -> str:
    """A demo version registered and promoted, as the release before the one under test."""
    version = register_demo_version(client)
    promote_version(client, NAME, version)
    return version


@pytest.mark.slow
def test_release_passes_the_gate_deploys_and_both_rollbacks_run(
    pipeline: Pipeline, server_registry: str
) -> None:
    """On the staging overlay: every kubectl call must name its namespace to succeed."""
    client = MlflowClient(server_registry)
    v1 = _first_version_in_production(client)
    v2 = register_demo_version(client)
    pipeline.seed_cluster("credit-risk-staging", v1)

    released = pipeline.run(*RELEASE_JOBS, K8S_OVERLAY="staging")

    assert released.returncode == 0, show(released)
    short_sha = subprocess.run(
        ["git", "rev-parse", "--short=8", "HEAD"],  # as CI_COMMIT_SHORT_SHA
        cwd=pipeline.checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    image = f"{IMAGE_REPOSITORY}:{short_sha}-model-{v2}"
    images = pipeline.images()
    assert images["pushed"] == [image]
    assert images["built"][image]["model.version"] == v2
    manifests = (pipeline.checkout / "manifests.yaml").read_text()
    assert f"value: models:/{NAME}/{v2}\n" in manifests
    assert f"image: {image}\n" in manifests
    assert "namespace: credit-risk-staging\n" in manifests
    assert models_deployed(pipeline) == [v1, v2]
    assert production(client) == (v2, [v2])
    tags = client.get_model_version(NAME, v2).tags
    assert (tags["gate.status"], tags["audit.promoted_gate_floor"]) == ("passed", TEST_FLOOR)
    assert tags["audit.promoted_by"] == "release-manager"

    rolled_back = pipeline.run("rollback-model", K8S_OVERLAY="staging")

    assert rolled_back.returncode == 0, show(rolled_back)
    assert models_deployed(pipeline) == [v1, v2, v1]
    assert production(client) == (v1, [v1])

    # Undoing that release (the rollback) brings model 2 back, and Production with it.
    undone = pipeline.run("rollback-release", K8S_OVERLAY="staging")

    assert undone.returncode == 0, show(undone)
    assert models_deployed(pipeline) == [v1, v2, v1, v2]
    assert pipeline.cluster()["revisions"][-1]["image"] == image
    assert production(client) == (v2, [v2])
    assert all(
        "--namespace" not in call or "credit-risk-staging" in call
        for call in pipeline.cluster()["calls"]
    )


@pytest.mark.slow
def test_a_candidate_below_the_floor_stops_at_the_gate(
    pipeline: Pipeline, server_registry: str
) -> None:
    client = MlflowClient(server_registry)
    v1 = _first_version_in_production(client)
    bad = register_demo_version(client, bad=True)
    register_demo_version(client)  # newer: MODEL_VERSION must win over "latest"
    pipeline.seed_cluster("credit-risk", v1)

    stopped = pipeline.run(*RELEASE_JOBS, MODEL_VERSION=bad)

    assert stopped.returncode != 0, show(stopped)
    # validate exits 3 (quality gate failed); promote and deploy need it, so never start.
    verdict = re.search(r"^validate\s+> (\{.*\})$", stopped.stdout, re.MULTILINE)
    assert verdict, show(stopped)
    result = json.loads(verdict.group(1))
    assert (result["exit_code"], result["version"]) == (3, bad)
    assert "below the floor" in result["reason"]
    assert not re.search(r"^(promote|deploy)\s+starting", stopped.stdout, re.MULTILINE)
    assert client.get_model_version(NAME, bad).tags["gate.status"] == "failed"
    assert production(client) == (v1, [v1])
    assert not any(call[0] == "apply" for call in pipeline.cluster().get("calls", []))
    assert models_deployed(pipeline) == [v1]


@pytest.mark.slow
def test_a_shadow_of_the_candidate_starts_beside_what_the_pods_serve(
    pipeline: Pipeline, server_registry: str
) -> None:
    """The pods keep their image and model version, read from the cluster, and gain the
    candidate as their shadow; Production does not move."""
    client = MlflowClient(server_registry)
    v1 = _first_version_in_production(client)
    v2 = register_demo_version(client)
    pipeline.seed_cluster("credit-risk-staging", v1)
    served_image = f"{IMAGE_REPOSITORY}:0000000-model-{v1}"

    started = pipeline.run(
        "candidate", "validate", "shadow-start", "--manual", "shadow-start", K8S_OVERLAY="staging"
    )

    assert started.returncode == 0, show(started)
    manifests = (pipeline.checkout / "manifests.yaml").read_text()
    assert f"name: MODEL_URI\n          value: models:/{NAME}/{v1}\n" in manifests
    assert f"name: SHADOW_MODEL_URI\n          value: models:/{NAME}/{v2}\n" in manifests
    assert f"image: {served_image}\n" in manifests
    assert "namespace: credit-risk-staging\n" in manifests
    assert any(call[0] == "apply" for call in pipeline.cluster()["calls"])
    assert pipeline.cluster()["revisions"][-1] == {"model-version": v1, "image": served_image}
    assert production(client) == (v1, [v1])
