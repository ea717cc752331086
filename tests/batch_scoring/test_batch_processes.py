"""Batch runs against the production command, in worker processes, killed, and on Spark."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from app.errors import ModelLoadError
from app.runtime.model import load_served_model
from batch_scoring.inputs import Chunk
from batch_scoring.local import ChunkJob, WorkerPool, score_chunk, use_model
from batch_scoring.output import MANIFEST, REJECTS, ROW_COLUMNS, SCORES
from batch_scoring.run import BatchOptions, run_batch
from registry_scripts.demo_data import LABEL, make_credit_dataset
from registry_scripts.export import export_model
from tests.batch_scoring.conftest import BatchModels
from tests.batch_scoring.models import iris_frame
from tests.support import processes
from tests.support.ci import missing
from tests.support.demo import RegisteredDemo
from tests.support.production import RunningServer, start_server, wait_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # they start the production command, workers, Spark


def batch_rows(directory: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ds.dataset(directory).to_table().to_pylist()
    return sorted(rows, key=lambda row: (row["input_file"], row["input_row"]))


def without_row_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ROW_COLUMNS} for row in rows]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as a JSON client sends them: missing values as null."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[return-value]


@pytest.fixture
def serve(registry: RegisteredDemo, tmp_path: Path) -> Iterator[Any]:
    started: list[RunningServer] = []

    def serve_model(model_uri: str) -> RunningServer:
        server = start_server(registry, tmp_path / "server", workers=1, MODEL_URI=model_uri)
        started.append(server)
        wait_ready(server)
        return server

    (tmp_path / "server").mkdir()
    yield serve_model
    for server in started:
        server.kill()


def invocations(server: RunningServer, rows: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/invocations", json={"dataframe_records": rows}, timeout=60
    )


def demo_frame(rows: int) -> pd.DataFrame:
    return make_credit_dataset(n_rows=rows, seed=11).drop(columns=[LABEL])


@pytest.mark.parametrize("model", ["demo", "classifier", "labeller", "guarded"])
def test_each_row_gets_what_invocations_answers_for_it(
    model: str, batch_models: BatchModels, serve: Any, tmp_path: Path
) -> None:
    """The same rows scored by the production command and in batch (chunks of 64; two
    worker processes for the demo): equal answers, and each refused row's reason is the message
    the server answers for that row alone: a value the signature refuses, or one breaking an
    enforced business rule of the version, on its input or on the model's answer."""
    refused: list[int] = []
    if model == "demo":
        uri, frame = "models:/credit-risk-scoring/1", demo_frame(300)
    elif model == "classifier":
        uri, frame = f"models:/{batch_models.classifier}/1", iris_frame()[0]
    elif model == "labeller":
        uri = f"models:/{batch_models.labeller}/1"
        positions = np.arange(200)
        frame = pd.DataFrame(
            {"amount": positions / 3, "count": (positions % 5).astype(float), "kind": "k"}
        )
        frame.loc[17, "count"] = 0.5
        frame.loc[150, "amount"] = np.nan
        refused = [17, 150]
    else:
        uri = f"models:/{batch_models.guarded}/1"
        positions = np.arange(200)
        channels = np.array(["web", "branch", "phone"])[positions % 3]
        frame = pd.DataFrame({"age": 20 + positions % 60, "amount": positions * 20.0})
        frame["channel"] = channels
        # Age 20 breaks `adult` (input); an amount above 3,500 scores above 3.5 and breaks
        # `score-bound` (output); a phone channel only warns.
        refused = sorted({*positions[positions % 60 == 0], *positions[positions * 20 > 3500]})
    frame.iloc[: len(frame) // 2].to_parquet(tmp_path / "in.parquet")
    frame.iloc[len(frame) // 2 :].reset_index(drop=True).to_csv(tmp_path / "in.csv", index=False)
    manifest = run_batch(
        BatchOptions(
            uri,
            tmp_path,
            tmp_path / "out",
            max_reject_share=0.5,
            chunk_rows=64,
            workers=2 if model == "demo" else 1,  # the pool once: it costs a load per worker
        )
    )
    assert manifest["rows"]["scored"] == len(frame) - len(refused)
    server = serve(uri)
    accepted = frame.drop(index=refused)
    answered = invocations(server, records(accepted))
    assert answered.status_code == 200, answered.text
    scores = batch_rows(tmp_path / "out" / "scores")
    # The CSV part sorts before the Parquet part; input order: Parquet rows, then CSV rows.
    half = len(frame) // 2
    in_order = sorted(scores, key=lambda row: (row["input_file"] == "in.csv", row["input_row"]))
    assert [
        row["input_row"] + (half if row["input_file"] == "in.csv" else 0) for row in in_order
    ] == accepted.index.tolist()
    expected = answered.json()["predictions"]
    got = without_row_columns(in_order)
    if not isinstance(expected[0], dict):
        got = [row["prediction"] for row in got]
    assert got == expected
    rejects = batch_rows(tmp_path / "out" / "rejects") if refused else []
    by_position = {
        row["input_row"] + (half if row["input_file"] == "in.csv" else 0): row for row in rejects
    }
    assert sorted(by_position) == refused
    for position, reject in by_position.items():
        alone = invocations(server, records(frame.loc[[position]]))
        assert alone.status_code == 422
        assert reject["reason"] == alone.json()["message"]


def batch_command(model: str, source: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "batch_scoring",
        "--model",
        model,
        "--input",
        str(source),
        "--output",
        str(output),
        *extra,
    ]


def test_a_killed_run_leaves_no_complete_looking_output_and_the_rerun_finishes(
    registry: RegisteredDemo, batch_models: BatchModels, tmp_path: Path
) -> None:
    """SIGKILL (the run and its workers) once the first part is written; then a rerun."""
    pd.DataFrame(
        {"amount": np.arange(400) * 1.0, "count": np.arange(400) % 3, "kind": "k"}
    ).to_parquet(tmp_path / "in.parquet")
    output = tmp_path / "out"
    command = batch_command(
        f"models:/{batch_models.slow_labeller}/1",
        tmp_path / "in.parquet",
        output,
        "--chunk-rows",
        "10",
        "--workers",
        "2",
    )
    env = {"MLFLOW_TRACKING_URI": registry.tracking_uri}
    first = processes.start_process(command, tmp_path / "first.log", env)
    staged_scores = tmp_path / ".out.incomplete" / "scores"
    wait_until(
        lambda: any(staged_scores.glob("*.parquet")),
        120,
        "the first part written",
        alive=lambda: first.poll() is None,
        detail=lambda: (tmp_path / "first.log").read_text()[-2000:],
    )
    processes.kill_group(first)
    assert first.returncode == -signal.SIGKILL
    assert not output.exists()
    assert not list(tmp_path.rglob(MANIFEST))

    rerun = subprocess.run(command, env={**env, **_path_env()}, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    manifest = json.loads((output / MANIFEST).read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["rows"] == {"in": 400, "scored": 400, "rejected": 0}
    assert [row["input_row"] for row in batch_rows(output / "scores")] == list(range(400))
    assert not (tmp_path / ".out.incomplete").exists()


def _path_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}


def test_the_command_exits_non_zero_past_its_share_of_rejects(
    registry: RegisteredDemo, batch_models: BatchModels, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"amount": [1.0, None, 3.0, 4.0], "count": [1, 2, 3, 4], "kind": "k"})
    frame.to_parquet(tmp_path / "in.parquet")
    command = batch_command(
        f"models:/{batch_models.labeller}/Production",
        tmp_path / "in.parquet",
        tmp_path / "out",
        "--max-reject-share",
        "0.2",
        "--workers",
        "1",
    )
    run = subprocess.run(
        command,
        env={**_path_env(), "MLFLOW_TRACKING_URI": registry.tracking_uri},
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr.decode()[-2000:]
    summary = json.loads(run.stdout)
    assert summary["status"] == "failed"
    assert summary["rows"] == {"in": 4, "scored": 3, "rejected": 1}
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["status"] == "failed"
    assert manifest["model"]["version"] == "1"


def test_the_spark_engine_writes_what_the_local_engine_writes(
    registry: RegisteredDemo, tmp_path: Path
) -> None:
    """The demo model on 300 rows (a Parquet and a CSV file, a few refused), Spark
    local[2] against the local engine: the same scores and rejects, the same manifest
    but for the engine and the times."""
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        missing(
            "the spark engine needs PySpark (requirements-spark.txt) and Java 17+ "
            "(apt-get install openjdk-17-jre-headless)"
        )
    frame = demo_frame(300).astype({"age": "float64"})
    frame.loc[5, "age"] = np.nan
    frame.loc[260, "income"] = np.nan
    (tmp_path / "in").mkdir()
    frame.iloc[:200].to_parquet(tmp_path / "in" / "a.parquet")
    frame.iloc[200:].to_csv(tmp_path / "in" / "b.csv", index=False)
    manifests = {}
    for engine in ("local", "spark"):
        manifests[engine] = run_batch(
            BatchOptions(
                "models:/credit-risk-scoring/Production",
                tmp_path / "in",
                tmp_path / engine,
                engine=engine,
                max_reject_share=0.05,
                workers=1,
                spark_master="local[2]",
            )
        )
    assert manifests["spark"]["rows"] == manifests["local"]["rows"]
    assert manifests["local"]["rows"]["rejected"] == 2
    for key in ("status", "model", "inputs"):
        assert manifests["spark"][key] == manifests["local"][key]
    for kind in ("scores", "rejects"):
        assert batch_rows(tmp_path / "spark" / kind) == batch_rows(tmp_path / "local" / kind)


def test_a_worker_process_writes_the_parts_the_command_s_own_process_writes(
    registry: RegisteredDemo, batch_models: BatchModels, tmp_path: Path
) -> None:
    """A chunk with refused rows, scored by a spawned worker once it has loaded the model
    and by this process: the same counts, scores and rejects."""
    model_dir = tmp_path / "model"
    export_model(f"models:/{batch_models.labeller}/1", model_dir)
    positions = np.arange(50)
    frame = pd.DataFrame({"amount": positions / 3, "count": (positions % 5) * 1.0, "kind": "k"})
    frame.loc[7, "count"] = 0.5
    frame.loc[30, "amount"] = np.nan
    chunk = Chunk(0, 0, 0, pa.RecordBatch.from_pandas(frame, preserve_index=False))
    jobs = {}
    for name in ("parent", "worker"):
        jobs[name] = ChunkJob(tmp_path / name, ("amount",))
        (tmp_path / name / SCORES).mkdir(parents=True)
        (tmp_path / name / REJECTS).mkdir()
    use_model(load_served_model(str(model_dir)))
    in_parent = score_chunk(chunk, "in.parquet", jobs["parent"])
    with WorkerPool(1, model_dir, threads=1) as pool:
        wait_until(pool.can_take, 120, "the worker loaded the model")
        pool.submit(chunk, "in.parquet", jobs["worker"])
        in_worker = list(pool.finished(block=True))
    assert in_worker == [dataclasses.replace(in_parent, by_parent=False)]
    assert in_parent.rejected == 2
    for kind in (SCORES, REJECTS):
        assert batch_rows(tmp_path / "worker" / kind) == batch_rows(tmp_path / "parent" / kind)


def test_a_worker_process_that_cannot_load_the_model_fails_the_run(tmp_path: Path) -> None:
    with (
        pytest.raises(ModelLoadError, match="a worker process cannot load the model"),
        WorkerPool(1, tmp_path / "no-model", threads=1) as pool,
    ):
        wait_until(pool.can_take, 120, "the worker's load failed")
