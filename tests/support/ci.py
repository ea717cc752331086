"""The one "are we in CI" switch: CI must run every test, a workstation may skip one."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# GitLab sets CI=true; `.ci/run` runs under it. Other spellings (1, yes) count too.
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(message: str) -> NoReturn:
    """Something a test needs is not installed: a failure under CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
