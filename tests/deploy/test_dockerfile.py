"""The Dockerfile passes hadolint and keeps the promises the deployment relies on."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import PROJECT_ROOT

from .manifests import venv_tool

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
PRODUCTION_COMMAND = 'gunicorn --config python:app.gunicorn_conf "app.main:create_app()"'


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\s*\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions of each named stage, in order."""
    named: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = named.setdefault(rest.split(" AS ")[-1], [])
        current.append((keyword, rest))
    return named


@pytest.mark.slow  # starts hadolint
def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_build_argument_with_a_pinned_default() -> None:
    (base,) = (rest for keyword, rest in instructions() if rest.startswith("BASE_IMAGE="))
    image = base.removeprefix("BASE_IMAGE=")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image)
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert froms[0] == "${BASE_IMAGE} AS build"
    assert "${BASE_IMAGE} AS runtime" in froms


def test_default_target_fetches_the_model_and_baked_target_carries_it() -> None:
    named = stages()
    assert list(named)[-1] == "fetch"
    assert named["fetch"] == [("FROM", "runtime AS fetch")]
    assert ("ENV", "MODEL_URI=/opt/model") in named["baked"]
    (download,) = (rest for keyword, rest in named["model"] if keyword == "RUN")
    assert download.startswith("--mount=type=secret,id=mlflow ")
    assert 'registry_scripts.export --model-uri "$BAKED_MODEL_URI" --output /opt/model' in download


def test_runtime_stage_runs_as_non_root_with_the_production_command() -> None:
    runtime = stages()["runtime"]
    (user,) = (rest for keyword, rest in runtime if keyword == "USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "numeric, so runAsNonRoot can check"
    (command,) = (rest for keyword, rest in runtime if keyword == "CMD")
    assert (
        command == '["gunicorn", "--config", "python:app.gunicorn_conf", "app.main:create_app()"]'
    )
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    for setting in (
        "PYTHONUNBUFFERED=1",
        "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus",
        "HOST=0.0.0.0",
        "OMP_NUM_THREADS=1",
    ):
        assert setting in env


def test_runtime_stage_installs_nothing() -> None:
    """Build tools and pip's work stay in the build stage; the venv is copied over."""
    runs = " ".join(rest for keyword, rest in stages()["runtime"] if keyword == "RUN")
    assert not re.search(r"pip install|apt-get|apt |gcc|build-essential", runs)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in stages()["runtime"]


def test_no_secret_is_a_build_argument_or_variable() -> None:
    names = [
        rest.split("=")[0]
        for keyword, rest in instructions()
        if keyword in {"ARG", "ENV"} and not rest.startswith("PATH=")
    ]
    assert not [name for name in names if re.search("PASSWORD|TOKEN|SECRET|KEY", name)]


def test_readme_documents_the_same_production_command() -> None:
    readme = PROJECT_ROOT / "README.md"
    if not readme.is_file():
        pytest.fail("README.md is missing")
    assert PRODUCTION_COMMAND in readme.read_text()


def test_build_context_is_an_allowlist() -> None:
    lines = [
        line
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line for line in lines if line.startswith("!")} == {
        "!requirements.lock",
        "!app/",
        "!model_fetch/",
        "!model_wrapper/",
        "!registry_scripts/",
        "!batch_scoring/",
    }


def test_build_installs_the_lock_with_hashes_required() -> None:
    """Every package and dependency pinned and checked; requirements.txt alone is not used."""
    build = stages()["build"]
    assert ("COPY", "requirements.lock /tmp/requirements.lock") in build
    (install,) = (rest for keyword, rest in build if "pip install" in rest)
    assert "--require-hashes -r /tmp/requirements.lock" in install
    assert "requirements.txt" not in " ".join(rest for _, rest in instructions())


def test_model_stage_copies_only_the_fetching_code_and_the_export_command() -> None:
    copied = {rest for keyword, rest in stages()["model"] if keyword == "COPY"}
    assert copied == {"model_fetch/ model_fetch/", "registry_scripts/ registry_scripts/"}
