"""Batch runs in this process (one worker): rejects, the manifest, the output's commit."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from batch_scoring.inputs import InputError
from batch_scoring.output import MANIFEST, OutputError, StagedOutput
from batch_scoring.run import BatchOptions, Progress, run_batch
from registry_scripts._promotion import promote_version
from registry_scripts.resolve import resolve_registry_uri
from tests.batch_scoring.conftest import BatchModels
from tests.batch_scoring.models import register_labeller


def labeller_rows(count: int) -> pd.DataFrame:
    positions = np.arange(count)
    return pd.DataFrame(
        {
            "amount": positions * 0.5,
            "count": positions % 7,
            "kind": np.where(positions % 2 == 0, "even", "odd"),
            "customer": [f"c{index}" for index in positions],
        }
    )


def read(directory: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = ds.dataset(directory).to_table().to_pylist()
    return sorted(rows, key=lambda row: (str(row["input_file"]), int(str(row["input_row"]))))


def test_a_run_scores_every_row_and_commits_a_manifest(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    frame = labeller_rows(250)
    (tmp_path / "in").mkdir()
    frame.iloc[:100].to_parquet(tmp_path / "in" / "a.parquet")
    frame.iloc[100:].to_csv(tmp_path / "in" / "b.csv", index=False)
    output = tmp_path / "out"
    manifest = run_batch(
        BatchOptions(
            f"models:/{batch_models.labeller}/Production",
            tmp_path / "in",
            output,
            chunk_rows=40,
            workers=1,
            keep=("customer",),
        )
    )
    assert manifest["status"] == "succeeded"
    assert manifest["rows"] == {"in": 250, "scored": 250, "rejected": 0}
    assert manifest["model"]["version"] == "1"
    assert manifest["model"]["resolved_uri"] == f"models:/{batch_models.labeller}/1"
    assert [entry["name"] for entry in manifest["inputs"]] == ["a.parquet", "b.csv"]
    assert all(len(entry["sha256"]) == 64 and entry["bytes"] > 0 for entry in manifest["inputs"])
    assert json.loads((output / MANIFEST).read_text()) == manifest
    scores = read(output / "scores")
    assert [(row["input_file"], row["input_row"]) for row in scores[:2]] == [
        ("a.parquet", 0),
        ("a.parquet", 1),
    ]
    assert (scores[100]["input_file"], scores[100]["input_row"]) == ("b.csv", 0)
    assert [row["customer"] for row in scores] == frame["customer"].tolist()
    assert {row["tag"] for row in scores} == {"one"}
    assert [row["total"] for row in scores] == (frame["amount"] * frame["count"]).tolist()
    assert not any(output.parent.glob(".out.incomplete"))


def test_refused_rows_go_to_rejects_with_the_reason_and_no_value(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    frame = labeller_rows(60).astype({"count": "float64", "kind": "object"})
    frame.loc[3, "amount"] = np.nan  # missing where a value is required
    frame.loc[10, "count"] = 2.75  # a decimal in a whole-number column
    frame.loc[20, "kind"] = None
    frame.loc[21, "count"] = 1e30  # beyond a long
    frame.to_parquet(tmp_path / "in.parquet")
    manifest = run_batch(
        BatchOptions(
            f"models:/{batch_models.labeller}/1",
            tmp_path / "in.parquet",
            tmp_path / "out",
            max_reject_share=0.1,
            chunk_rows=25,
            workers=1,
        )
    )
    assert manifest["status"] == "succeeded"
    assert manifest["rows"] == {"in": 60, "scored": 56, "rejected": 4}
    rejects = {row["input_row"]: row["reason"] for row in read(tmp_path / "out" / "rejects")}
    assert rejects == {
        3: "column 'amount' is required but has missing (null) values; it expects double (numbers)",
        10: "column 'count' expects long (whole numbers), got decimal numbers",
        20: "column 'kind' is required but has missing (null) values; it expects string (text)",
        21: "column 'count' expects long (whole numbers), got numbers outside its range",
    }
    assert not any("2.75" in str(reason) or "1e" in str(reason) for reason in rejects.values())
    scored_rows = {row["input_row"] for row in read(tmp_path / "out" / "scores")}
    assert scored_rows == set(range(60)) - set(rejects)


def test_a_run_past_its_share_of_rejects_fails_and_publishes_no_scores(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    frame = labeller_rows(50)
    frame = frame.astype({"amount": "object"})
    frame.loc[[1, 2], "amount"] = "not a number"
    frame.to_csv(tmp_path / "in.csv", index=False)
    output = tmp_path / "out"
    manifest = run_batch(
        BatchOptions(
            f"models:/{batch_models.labeller}/1",
            tmp_path / "in.csv",
            output,
            max_reject_share=0.01,
            workers=1,
        )
    )
    assert manifest["status"] == "failed"
    assert "2 of 50 rows" in manifest["failure"]
    assert json.loads((output / MANIFEST).read_text())["status"] == "failed"
    assert not (output / "scores").exists()
    reasons = {row["reason"] for row in read(output / "rejects")}
    assert reasons == {"column 'amount' expects double (numbers), got text"}


def test_the_version_stays_pinned_while_production_moves_mid_run(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    name = "batch-moving"
    client = mlflow.MlflowClient()
    promote_version(client, name, register_labeller(name, "first"))
    second = register_labeller(name, "second")
    labeller_rows(100).to_parquet(tmp_path / "in.parquet")
    promoted_at: list[int] = []

    def promote_after_first_chunk(progress: Progress) -> None:
        if not promoted_at:
            promote_version(client, name, second)
            promoted_at.append(progress.rows)

    manifest = run_batch(
        BatchOptions(
            f"models:/{name}/Production",
            tmp_path / "in.parquet",
            tmp_path / "out",
            chunk_rows=20,
            workers=1,
        ),
        on_progress=promote_after_first_chunk,
    )
    assert promoted_at == [20]
    assert str(resolve_registry_uri(client, f"models:/{name}/Production").version) == second
    assert manifest["model"]["version"] == "1"
    assert {row["tag"] for row in read(tmp_path / "out" / "scores")} == {"first"}


def test_a_completed_output_is_replaced_only_when_asked(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    labeller_rows(10).to_parquet(tmp_path / "in.parquet")
    options = BatchOptions(
        f"models:/{batch_models.labeller}/1", tmp_path / "in.parquet", tmp_path / "out", workers=1
    )
    first = run_batch(options)
    with pytest.raises(OutputError, match="--overwrite"):
        run_batch(options)
    second = run_batch(BatchOptions(**{**options.__dict__, "overwrite": True}))
    assert second["started_at"] >= first["started_at"]
    assert json.loads((tmp_path / "out" / MANIFEST).read_text()) == second


def test_an_output_another_run_holds_or_not_ours_is_refused(
    batch_models: BatchModels, tmp_path: Path
) -> None:
    labeller_rows(10).to_parquet(tmp_path / "in.parquet")
    model = f"models:/{batch_models.labeller}/1"
    held = StagedOutput(tmp_path / "out", overwrite=False)
    with held, pytest.raises(OutputError, match="another run"):
        run_batch(BatchOptions(model, tmp_path / "in.parquet", tmp_path / "out", workers=1))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not the output of a batch run"):
        run_batch(BatchOptions(model, tmp_path / "in.parquet", tmp_path / "mine", workers=1))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_input_that_is_no_table_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no table")
    with pytest.raises(InputError, match="no Parquet"):
        run_batch(BatchOptions("models:/absent/1", tmp_path / "in", tmp_path / "out"))
    assert not (tmp_path / "out").exists()
