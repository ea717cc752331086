"""k8s/rollback.sh: the two rollbacks, on a recorded cluster and a real registry.

The cluster is tests/registry_scripts/fake_kubectl.py (no cluster runs here); the registry
is a real SQLite one with real model versions, driven by the real commands as processes.
History [1, 2, 2'] is model 1, model 2, then model 2 again with new code (another image).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from registry_scripts._promotion import promote_version
from tests.registry_scripts.support import production
from tests.support import PROJECT_ROOT
from tests.support.stand_ins import install_stand_in

NAME = "credit-risk-scoring"
ROLLBACK = PROJECT_ROOT / "k8s" / "rollback.sh"
IMAGE = "registry.example.com/ml/credit-risk-serving:{sha}-model-{version}"
RUN_SECONDS = 180


def pod_template(version: str, sha: str) -> dict[str, str]:
    return {"model-version": version, "image": IMAGE.format(sha=sha, version=version)}


class Cluster:
    """The fake kubectl's state file, and an environment whose kubectl is the fake."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.state = tmp_path / "cluster.json"
        bin_dir = tmp_path / "stand-ins"
        install_stand_in(bin_dir, "kubectl", "tests.registry_scripts.fake_kubectl")
        self.env = {
            **env,
            "PATH": f"{bin_dir}:{env['PATH']}",
            "PYTHON": sys.executable,
            "REAL_KUBECTL": str(Path(sys.executable).parent / "kubectl"),
            "FAKE_KUBE_STATE": str(self.state),
        }

    def seed(self, namespace: str, revisions: list[dict[str, str]]) -> None:
        self.state.write_text(json.dumps({"namespace": namespace, "revisions": revisions}))

    def read(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state.read_text())
        return state

    def rollback(
        self, operation: str, overlay: str, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ROLLBACK), operation, overlay],
            cwd=self.state.parent,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
        )


@pytest.fixture
def cluster(
    sqlite_registry: str, tmp_path: Path, command_env: Callable[..., dict[str, str]]
) -> Cluster:
    """Made after the registry, so the commands it runs inherit MLFLOW_TRACKING_URI."""
    return Cluster(tmp_path, command_env())


@pytest.fixture
def released(
    client: MlflowClient, register_versions: Callable[[int], list[str]]
) -> tuple[str, str]:
    """Versions 1 then 2 promoted: Production is 2, `previous` is 1."""
    v1, v2 = register_versions(2)
    promote_version(client, NAME, v1)
    promote_version(client, NAME, v2)
    return v1, v2


HISTORIES = {
    "[1, 2, 2']": [("1", "aaaaaaa"), ("2", "bbbbbbb"), ("2", "ccccccc")],
    "[1, 2]": [("1", "aaaaaaa"), ("2", "bbbbbbb")],
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("history", "operation", "ends_with"),
    [
        # The model comes back whatever code came after it: revision 1's template.
        ("[1, 2, 2']", "model", ("1", "aaaaaaa")),
        ("[1, 2]", "model", ("1", "aaaaaaa")),
        # The last release goes: 2' -> 2 keeps model 2; 2 -> 1 brings model 1 back.
        ("[1, 2, 2']", "release", ("2", "bbbbbbb")),
        ("[1, 2]", "release", ("1", "aaaaaaa")),
    ],
)
def test_rollback_ends_with_cluster_and_registry_on_the_same_version(
    cluster: Cluster,
    client: MlflowClient,
    released: tuple[str, str],
    history: str,
    operation: str,
    ends_with: tuple[str, str],
) -> None:
    revisions = [pod_template(version, sha) for version, sha in HISTORIES[history]]
    cluster.seed("credit-risk", revisions)

    completed = cluster.rollback(operation, "production")

    assert completed.returncode == 0, completed.stderr[-3000:]
    state = cluster.read()
    assert state["revisions"] == [*revisions, pod_template(*ends_with)]
    assert production(client) == (ends_with[0], [ends_with[0]])
    (line,) = completed.stdout.splitlines()
    assert json.loads(line)["version"] == ends_with[0]


@pytest.mark.slow
def test_a_retried_model_rollback_finishes_without_undoing_twice(
    cluster: Cluster, client: MlflowClient, released: tuple[str, str], tmp_path: Path
) -> None:
    """The first attempt undoes, then the rollout times out; the retry only completes it."""
    revisions = [pod_template(version, sha) for version, sha in HISTORIES["[1, 2, 2']"]]
    cluster.seed("credit-risk", revisions)
    flag = tmp_path / "fail-rollout-status-once"
    flag.touch()

    failed = cluster.rollback("model", "production", FAKE_KUBECTL_FAIL_STATUS_ONCE=str(flag))
    assert failed.returncode != 0
    assert cluster.read()["revisions"] == [*revisions, revisions[0]]
    assert production(client) == ("2", ["2"])

    retried = cluster.rollback("model", "production")
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "finishing an earlier rollback" in retried.stderr
    assert cluster.read()["revisions"] == [*revisions, revisions[0]]
    assert production(client) == ("1", ["1"])


@pytest.mark.slow
def test_model_rollback_without_a_revision_of_the_previous_version_changes_nothing(
    cluster: Cluster, client: MlflowClient, released: tuple[str, str]
) -> None:
    """Model 1 was never rolled out here (or fell out of the kept history)."""
    revisions = [pod_template("2", "bbbbbbb"), pod_template("2", "ccccccc")]
    cluster.seed("credit-risk", revisions)

    completed = cluster.rollback("model", "production")

    assert completed.returncode == 1
    assert "no revision of deployment/credit-risk-serving in credit-risk runs model version 1" in (
        completed.stderr
    )
    assert cluster.read()["revisions"] == revisions
    assert production(client) == ("2", ["2"])


@pytest.mark.slow  # starts the script and `kubectl kustomize`
@pytest.mark.parametrize("overlay", ["production", "staging"])
def test_namespace_script_names_the_namespace_the_overlay_renders_into(overlay: str) -> None:
    printed = subprocess.run(
        ["sh", str(PROJECT_ROOT / "k8s" / "namespace.sh"), overlay],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    rendered = subprocess.run(
        [str(Path(sys.executable).parent / "kubectl"), "kustomize", f"k8s/overlays/{overlay}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    namespaces = {doc["metadata"].get("namespace") for doc in yaml.safe_load_all(rendered) if doc}
    assert namespaces == {printed}


@pytest.mark.slow  # starts k8s/rollback.sh
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["model"], "usage:"),
        (["undo", "production"], "unknown operation 'undo'"),
        (["model", "../base"], "not an overlay name"),
        (["release", "qa"], "no overlay at"),
    ],
)
def test_rollback_refuses_bad_arguments_before_touching_anything(
    cluster: Cluster, args: list[str], error: str
) -> None:
    completed = subprocess.run(
        ["sh", str(ROLLBACK), *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 2
    assert error in completed.stderr
    assert not cluster.state.exists(), "kubectl was called"
