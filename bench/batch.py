"""Batch scoring throughput: the batch command's local engine against a plain predict loop
and against MLflow's spark_udf, on the demo model, side by side.

    .venv/bin/python -m bench.batch                 # 10k and 100k rows
    .venv/bin/python -m bench.batch --rows 10000 100000 1000000

Each size is one Parquet file of demo applicants. Each way runs as its own process, timed
from start to exit (start-up and model load included, as a scheduled job pays them), with
its process tree's peak memory (the sum of the processes' PSS, children and Spark's JVM
included, sampled every 0.2 s):
- `batch local`: `python -m batch_scoring --workers <cores>` (rows checked, answers taken
  as the server answers them, Parquet parts, manifest);
- `plain loop`: `mlflow.pyfunc.load_model(uri).predict` over chunks of the same size in one
  process, each chunk's output written to Parquet;
- `spark_udf`: `mlflow.pyfunc.spark_udf` in Spark `local[2]`, output written to Parquet.
Not part of `make test`; results go to bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proctree import memory

RESULTS = Path(__file__).with_name("results") / "batch.json"
CHUNK_ROWS = 10_000
SAMPLE_SECONDS = 0.2


def _plain_loop(model_uri: str, source: str, output: str) -> None:
    import mlflow
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = mlflow.pyfunc.load_model(model_uri)
    Path(output).mkdir()
    for index, batch in enumerate(pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS)):
        predictions = model.predict(batch.to_pandas())
        pq.write_table(pa.Table.from_pandas(predictions), f"{output}/part-{index:06d}.parquet")


def _spark_udf(model_uri: str, source: str, output: str) -> None:
    import mlflow
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.master("local[2]").appName("bench-batch").getOrCreate()
    frame = spark.read.parquet(source)
    udf = mlflow.pyfunc.spark_udf(
        spark,
        model_uri,
        result_type="score double, risk_level string, decision string, "
        "model_name string, model_version string",
        env_manager="local",
    )
    frame.select(udf(*frame.columns).alias("p")).select("p.*").write.parquet(output)
    spark.stop()


def _measure(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(found.pss_bytes for found in memory(process.pid)))
        time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{command[2:4]} failed ({process.returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_memory_mb": round(peak / 2**20)}


def run(sizes: list[int], root: Path) -> list[dict[str, Any]]:
    from bench.registry import create_demo_registry
    from registry_scripts.demo_data import LABEL, make_credit_dataset

    tracking_uri, model_uri = create_demo_registry(root / "registry")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    cores = len(os.sched_getaffinity(0))
    results = []
    for rows in sizes:
        source = root / f"applicants-{rows}.parquet"
        make_credit_dataset(n_rows=rows, seed=5).drop(columns=[LABEL]).to_parquet(source)
        ways = {
            "batch local": [
                *("-m", "batch_scoring", "--model", model_uri, "--input", str(source)),
                *("--output", str(root / f"local-{rows}"), "--workers", str(cores)),
            ],
            "plain loop": ["-m", "bench.batch", "--plain-loop", model_uri, str(source)],
            "spark_udf": ["-m", "bench.batch", "--spark-udf", model_uri, str(source)],
        }
        for way, arguments in ways.items():
            if way != "batch local":
                arguments = [*arguments, str(root / f"{way.replace(' ', '-')}-{rows}")]
            measured = _measure([sys.executable, *arguments], env)
            result = {"rows": rows, "way": way, **measured}
            result["rows_per_second"] = round(rows / measured["seconds"])
            results.append(result)
            print(json.dumps(result), flush=True)
    return results


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | way | seconds | rows/s | vs plain loop | peak memory (MB) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for result in results:
        plain = next(r for r in results if r["rows"] == result["rows"] and r["way"] == "plain loop")
        ratio = result["rows_per_second"] / plain["rows_per_second"]
        lines.append(
            f"| {result['rows']:,} | {result['way']} | {result['seconds']} | "
            f"{result['rows_per_second']:,} | {ratio:.2f}x | {result['peak_memory_mb']:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--plain-loop", nargs=3, metavar=("URI", "INPUT", "OUTPUT"))
    parser.add_argument("--spark-udf", nargs=3, metavar=("URI", "INPUT", "OUTPUT"))
    args = parser.parse_args(argv)
    if args.plain_loop:
        _plain_loop(*args.plain_loop)
        return 0
    if args.spark_udf:
        _spark_udf(*args.spark_udf)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        results = run(args.rows, Path(scratch))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"cores": len(os.sched_getaffinity(0)), "runs": results}, indent=2) + "\n"
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
