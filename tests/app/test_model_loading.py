"""Any MLflow URI loads, resolved to its registry version; an unloadable model stops start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import ModelLoadError
from app.main import create_app
from app.runtime.model import load_served_model
from app.settings import Settings
from registry_scripts.export import export_model
from tests.support.demo import RegisteredDemo


@pytest.mark.parametrize(
    "uri_template",
    [
        "models:/{name}/Production",
        "models:/{name}@production",
        "models:/{name}/{version}",
        "models:/{name}/latest",
    ],
)
def test_registry_uris_resolve_to_the_concrete_version(
    registry: RegisteredDemo, uri_template: str
) -> None:
    uri = uri_template.format(name=registry.name, version=registry.version)
    description = load_served_model(uri).description
    assert description.requested_uri == uri
    assert description.resolved_uri == f"models:/{registry.name}/{registry.version}"
    assert (description.name, description.version) == (registry.name, registry.version)


def test_runs_uri_loads_without_registry_identity(registry: RegisteredDemo) -> None:
    model = load_served_model(f"runs:/{registry.run_id}/model")
    assert model.description.name is None
    assert model.description.run_id == registry.run_id


def test_exported_directory_serves_with_its_registry_identity(
    registry: RegisteredDemo, tmp_path: Path
) -> None:
    record = export_model(f"models:/{registry.name}@production", tmp_path / "model")
    assert json.loads((tmp_path / "model" / "registry_origin.json").read_text()) == record
    description = load_served_model(str(tmp_path / "model")).description
    assert (description.name, description.version) == (registry.name, registry.version)
    assert description.resolved_uri == f"models:/{registry.name}/{registry.version}"
    assert description.run_id == registry.run_id


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (
            "models:/no-such-model/Production",
            "cannot resolve model 'models:/no-such-model/Production'",
        ),
        ("models:/credit-risk-scoring@no-such-alias", "cannot resolve model"),
        ("/nonexistent/model/dir", "cannot load model '/nonexistent/model/dir'"),
    ],
)
def test_unloadable_models_raise_one_clear_error(
    registry: RegisteredDemo, uri: str, reason: str
) -> None:
    with pytest.raises(ModelLoadError, match=reason):
        load_served_model(uri)


def test_the_factory_exits_non_zero_with_one_critical_line(
    registry: RegisteredDemo, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exited:
        create_app(Settings(model_uri="models:/no-such-model/Production"))
    assert exited.value.code == 3
    critical = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(critical) == 1
    assert "model did not load, server not started" in critical[0].getMessage()
