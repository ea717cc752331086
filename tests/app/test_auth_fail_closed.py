"""Authentication configured but unusable stops the factory: never a silently open service."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.main import create_app
from app.runtime.model import ServedModel
from app.settings import Settings


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"api_keys_file": "{tmp}/no-such-file"}, "cannot be read"),
        ({"api_keys_file": "{tmp}/empty"}, "holds no key; authentication would be off"),
        ({"api_keys_file": "{tmp}/blank", "api_keys": "k-1"}, "holds no key"),
        ({"api_keys": " , ,"}, "API_KEYS is set but holds no key"),
    ],
    ids=["missing-file", "empty-file", "blank-file-beside-keys", "only-commas"],
)
def test_unusable_keys_exit_3_with_one_critical_line(
    served_model: ServedModel,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, str],
    reason: str,
) -> None:
    (tmp_path / "empty").write_text("")
    (tmp_path / "blank").write_text(" \n\t\n")
    values = {key: value.format(tmp=tmp_path) for key, value in settings.items()}
    with pytest.raises(SystemExit) as exited:
        create_app(Settings(**values), model=served_model)  # type: ignore[arg-type]
    assert exited.value.code == 3
    (critical,) = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert critical.startswith("authentication misconfigured, server not started: ")
    assert reason in critical
