"""The real image: built from the Dockerfile with podman, run the way a pod runs it.

No base image can be pulled here, so a Debian bookworm root filesystem made with debootstrap
stands in for python:3.11-slim, through the BASE_IMAGE build argument. pip inside the build
installs from a wheelhouse downloaded beforehand, through a mounted /etc/pip.conf, so the
Dockerfile is built exactly as in production. The base and the wheels are cached between runs
under ~/.cache; images and containers live in a private podman store that the test deletes.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT
from tests.support.ci import missing
from tests.support.ports import free_port
from tests.support.waiting import wait_ready

from .manifests import K8S, render_overlay
from .servers import check_serves, pod_environment

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "credit-risk-serving-image-test"
)
# Without the runc runtime and these limits every container start fails on this machine.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""
PIP_CONF = "[global]\nno-index = true\nfind-links = /wheels\n"
IMAGE = "localhost/credit-risk-serving:test-model-1"
BAKED_VERSION = "1"
FETCHED_VERSION = "2"


def run(*command: str | Path, timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )
    assert result.returncode == 0, f"{command[:3]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def require_podman() -> None:
    """CI must run this test; a developer machine without podman skips it."""
    if shutil.which("podman") is not None:
        return
    missing("podman is not installed: apt-get install podman buildah runc debootstrap")


def base_root_filesystem() -> Path:
    """A tarball of Debian bookworm with python3 and venv, made once with debootstrap."""
    tarball = CACHE / "debian-bookworm-python3.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.fail("making the base image needs debootstrap, run as root")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        rootfs = Path(work) / "rootfs"
        run(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            rootfs,
            timeout=600,
        )
        partial = Path(work) / "rootfs.tar"
        run("tar", "-C", rootfs, "-cf", partial, ".", timeout=120)
        partial.replace(tarball)
    return tarball


def wheelhouse() -> Path:
    """The wheels of requirements.lock, for this interpreter's platform (the base's: CPython
    3.11 on glibc Linux), downloaded once per version of the file and checked against its
    hashes, as the build checks them again."""
    digest = hashlib.sha256((PROJECT_ROOT / "requirements.lock").read_bytes()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{digest}"
    if wheels.is_dir():
        return wheels
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        partial = Path(work) / "wheels"
        run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--require-hashes",
            "--requirement",
            PROJECT_ROOT / "requirements.lock",
            "--dest",
            partial,
            timeout=600,
        )
        partial.rename(wheels)
    return wheels


class Podman:
    """podman on a private store, so the test sees and removes only what it made."""

    def __init__(self, home: Path) -> None:
        self.home = home
        (home / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(home / "containers.conf")}
        self.command = ["podman", "--root", str(home / "storage"), "--runroot", str(home / "run")]

    def __call__(self, *args: str | Path, timeout: float = 120) -> str:
        return run(*self.command, *args, timeout=timeout, env=self.env)

    def logs(self, container: str) -> str:
        """The container's output; the server logs to stderr, which podman keeps apart."""
        return subprocess.run(
            [*self.command, "logs", container],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=self.env,
        ).stderr

    def running(self, container: str) -> bool:
        return self("inspect", "--format={{.State.Running}}", container).strip() == "true"

    def remove_everything(self) -> None:
        for command in (("rm", "--all", "--force"), ("rmi", "--all", "--force")):
            try:
                self(*command)
            except (AssertionError, subprocess.TimeoutExpired) as error:
                print(f"cleanup: {error}")
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    require_podman()
    engine = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine.remove_everything()


@pytest.fixture(scope="module")
def image(podman: Podman, demo_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The baked target, version 1 downloaded from the demo registry during the build."""
    podman("import", "--quiet", base_root_filesystem(), "localhost/debian-python3:test")
    work = tmp_path_factory.mktemp("build")
    (work / "pip.conf").write_text(PIP_CONF)
    # The build secret: how registry_scripts.export finds the registry, as in CI.
    (work / "mlflow.env").write_text(f"MLFLOW_TRACKING_URI=sqlite:///{demo_registry}/mlflow.db\n")
    podman(
        "build",
        "--format=docker",  # OCI images drop HEALTHCHECK
        "--build-arg=BASE_IMAGE=localhost/debian-python3:test",
        "--target=baked",
        f"--build-arg=BAKED_MODEL_URI=models:/credit-risk-scoring/{BAKED_VERSION}",
        f"--secret=id=mlflow,src={work / 'mlflow.env'}",
        f"--volume={demo_registry}:{demo_registry}",
        f"--volume={wheelhouse()}:/wheels:ro",
        f"--volume={work / 'pip.conf'}:/etc/pip.conf:ro",
        f"--tag={IMAGE}",
        PROJECT_ROOT,
        timeout=480,
    )
    return IMAGE


def pinned_pod_environment(tmp_path: Path, version: str, *options: str) -> dict[str, str]:
    """The container environment of the production overlay pinned to `version`."""
    k8s = tmp_path / "k8s"
    shutil.copytree(K8S, k8s)
    run("sh", k8s / "pin-release.sh", "production", version, IMAGE, *options, timeout=30)
    return pod_environment(render_overlay("production", k8s))


@contextmanager
def pod(podman: Podman, image: str, env: dict[str, str], *extra: str) -> Iterator[tuple[str, str]]:
    """Run the image with the pod's securityContext and volumes; yield its id and URL."""
    port = free_port()
    container = podman(
        "run",
        "--detach",
        "--read-only",
        "--tmpfs=/tmp:rw,size=512m",
        "--tmpfs=/tmp/prometheus:rw,size=64m",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--publish=127.0.0.1:{port}:8000",
        *(f"--env={name}={value}" for name, value in env.items()),
        *extra,
        image,
    ).strip()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(f"{base_url}/readyz", 120, alive=lambda: podman.running(container))
        yield container, base_url
    except AssertionError:
        print(podman.logs(container)[-4000:])  # pytest shows it with the failure
        raise
    finally:
        podman("rm", "--force", container)


def test_baked_image_serves_its_model_without_the_registry(
    podman: Podman, image: str, tmp_path: Path
) -> None:
    """With the baked pin's environment, whose MLFLOW_TRACKING_URI no pod could reach from
    here, the container serves version 1 from /opt/model, as user 10001."""
    env = pinned_pod_environment(tmp_path, BAKED_VERSION, "--baked")
    assert env["MODEL_URI"] == "/opt/model"
    with pod(podman, image, env) as (container, base_url):
        described = check_serves(base_url, BAKED_VERSION)
        assert described["requested_uri"] == "/opt/model"
        assert podman("exec", container, "id", "-u").strip() == "10001"
        podman("healthcheck", "run", container)
        # Gunicorn drains and exits cleanly on the SIGTERM Kubernetes sends.
        podman("stop", "--time=40", container, timeout=60)
        assert podman("inspect", "--format={{.State.ExitCode}}", container).strip() == "0"


def test_image_fetches_the_pinned_version_at_start_up(
    podman: Podman, image: str, demo_registry: Path, tmp_path: Path
) -> None:
    env = pinned_pod_environment(tmp_path, FETCHED_VERSION)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{demo_registry}/mlflow.db"
    with pod(podman, image, env, f"--volume={demo_registry}:{demo_registry}") as (_, base_url):
        check_serves(base_url, FETCHED_VERSION)
