"""The lock the image installs: complete, hashed, in step with requirements.txt and with what
the demo model asks for; and the audit that runs on it says when it could not run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from model_wrapper.packaging import pinned_model_requirements
from tests.support import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.lock"
AUDIT = PROJECT_ROOT / ".ci" / "audit"


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement.split("==")[0].split("[")[0]).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and hashes skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith(("#", "--")):
            requirement = line.split()[0]
            found[_name(requirement)] = requirement.split("==")[1]
    return found


def test_every_requirement_is_locked_at_its_pinned_version() -> None:
    locked = pins(LOCK)
    for name, version in pins(PROJECT_ROOT / "requirements.txt").items():
        assert locked.get(name) == version, (
            f"{name}: requirements.txt {version}, lock {locked.get(name)}"
        )


def test_every_locked_package_carries_hashes() -> None:
    """pip --require-hashes refuses a lock with one unhashed package; find it here first."""
    entries = [
        entry
        for entry in re.split(r"\n(?=[a-z0-9])", LOCK.read_text())
        if not entry.startswith("#")
    ]
    assert len(entries) == len(pins(LOCK)) > 50
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert "--index-url" not in LOCK.read_text().replace("--index-url=https://pypi.org/simple", "")


def test_the_demo_model_asks_for_the_locked_versions() -> None:
    """The model logs the versions installed where it is trained; an image installed from
    the lock must hold exactly those (requirements.txt's comment says so)."""
    locked = pins(LOCK)
    for requirement in pinned_model_requirements():
        name, version = requirement.split("==")
        assert locked[_name(name)] == version, requirement


def _audit(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    waivers = tmp_path / "waivers.txt"
    if not waivers.exists():
        waivers.write_text("# none\n")
    return subprocess.run(
        ["bash", str(AUDIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            # Nothing listens there: the advisory service is unreachable.
            "AUDIT_SERVICE_PROBE": "http://127.0.0.1:9/pypi/pip/json",
            "AUDIT_WAIVERS": str(waivers),
            "PIP_AUDIT": "/bin/false",  # must never be reached in these cases
            **env,
        },
    )


@pytest.mark.slow  # starts .ci/audit
def test_a_local_audit_without_its_service_says_it_was_skipped(tmp_path: Path) -> None:
    result = _audit(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("audit SKIPPED: pip-audit's advisory service is unreachable")
    assert "Nothing was checked" in result.stderr


@pytest.mark.slow  # starts .ci/audit
def test_the_pipeline_audit_without_its_service_fails(tmp_path: Path) -> None:
    result = _audit(tmp_path, AUDIT_REQUIRED="1")
    assert result.returncode == 1
    assert result.stderr.startswith("audit FAILED: the advisory service is unreachable")


@pytest.mark.slow  # starts .ci/audit
@pytest.mark.parametrize("line", ["GHSA-aaaa-bbbb-cccc", "GHSA-aaaa-bbbb-cccc  #  "])
def test_a_waiver_without_a_reason_is_refused(tmp_path: Path, line: str) -> None:
    (tmp_path / "waivers.txt").write_text(f"# waivers\n{line}\n")
    result = _audit(tmp_path)
    assert result.returncode == 2
    assert "is not 'ADVISORY-ID  # reason'" in result.stderr
