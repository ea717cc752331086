"""The Spark engine: the same refusals, MLflow's `spark_udf` with the resolved version, the
same output layout.

Each input file is read by Spark; a row's `input_row` is its position in the file, from
Spark's partition ids and its counts per partition (a file's partitions are read in file
order). The refusers run in each partition (mapInPandas) as they do in the local engine;
rows they refuse go to rejects. The others are scored by `mlflow.pyfunc.spark_udf` from
the run's local copy of the version, told its registry name and version as the server
tells it, with a result type taken from the model's answer to the first rows of the input
(scored locally, as the local engine scores them). NaN in a float output is written as
null, as /invocations answers it. A row MLflow itself refuses at predict (a type the
refusers do not check) fails the Spark job rather than going to rejects.

`--spark-master` takes any master URL (`local[*]`, `spark://host:7077`, `yarn`, `k8s://`);
on a cluster the input, the output and the model copy must be on paths the driver and
every executor see, and executors need this project's requirements.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from mlflow.models import Model
from mlflow.types import DataType, Schema

from app.guardrails.engine import RuleEngine
from app.protocol.frames import has_columns
from app.protocol.validation import plain_type
from app.runtime.model import ServedModel, config_overrides
from batch_scoring.answers import PREDICTION
from batch_scoring.chunks import ChunkScorer
from batch_scoring.guardrails import enforces_output_rules, rule_engine
from batch_scoring.inputs import InputError, InputFile, read_chunks
from batch_scoring.local import ChunkResult
from batch_scoring.output import REJECTS, ROW_COLUMNS, SCORES
from batch_scoring.refusers import Refuser, build_refusers, refused_rows, signature_columns
from model_fetch.origin import RegistryOrigin

if TYPE_CHECKING:  # batch_scoring.run imports this module when the spark engine is chosen
    from batch_scoring.run import BatchOptions

_REFUSAL = "_refusal"
_PREDICTION = "_prediction"
# monotonically_increasing_id(): the partition id above bit 33, the row in it below.
_ROW_BITS = 33
_SAMPLE_ROWS = 100


def score_with_spark(
    model: ServedModel,
    model_dir: Path,
    inputs: list[InputFile],
    staging: Path,
    options: BatchOptions,
) -> ChunkResult:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "the spark engine needs PySpark and a Java 17+ runtime: "
            "pip install -r requirements-spark.txt"
        ) from None
    owned = SparkSession.getActiveSession() is None
    spark = SparkSession.builder.master(options.spark_master).appName("batch-scoring").getOrCreate()
    try:
        return _score(spark, model, model_dir, inputs, staging, options)
    finally:
        if owned:
            spark.stop()


def _score(
    spark: Any,
    model: ServedModel,
    model_dir: Path,
    inputs: list[InputFile],
    staging: Path,
    options: BatchOptions,
) -> ChunkResult:
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StringType, StructField, StructType

    engine = rule_engine(model)
    if enforces_output_rules(engine):
        raise InputError(
            "this model version enforces business rules on its answers, which the spark "
            "engine does not apply: score it with --engine local"
        )
    refusers = build_refusers(model, engine)
    records, output_type = _output_type(model, engine, inputs)
    description = model.description
    origin = RegistryOrigin(description.resolved_uri, description.name, description.version)
    predict = mlflow.pyfunc.spark_udf(
        spark,
        str(model_dir),
        result_type=from_arrow_type(output_type),
        env_manager="local",
        model_config=config_overrides(Model.load(str(model_dir)), origin),
    )
    checked = None
    for source in inputs:
        frame = _read(spark, source).withColumn("input_file", F.lit(source.name))
        frame = _with_positions(frame)
        missing = [name for name in options.keep if name not in frame.columns]
        if missing:
            raise InputError(f"{source.name} has no column(s) to keep: {', '.join(missing)}")
        # A new StructType: `add` would change the frame's own schema object.
        with_refusal = StructType([*frame.schema.fields, StructField(_REFUSAL, StringType())])
        refused = frame.mapInPandas(_refuse_rows(refusers, model.input_schema), schema=with_refusal)
        checked = refused if checked is None else checked.unionByName(refused)
    assert checked is not None
    checked = checked.cache()
    schema = model.input_schema
    names = schema.input_names() if has_columns(schema) and schema is not None else None
    accepted = checked.where(F.col(_REFUSAL).isNull())
    model_columns = (
        [_as_signature_type(F, spec) for spec in schema.inputs]
        if names is not None and schema is not None
        else [F.col(c) for c in accepted.columns if c not in _ADDED_COLUMNS]
    )
    row_columns = [*ROW_COLUMNS, *options.keep]
    scored = accepted.select(*row_columns, predict(*model_columns).alias(_PREDICTION))
    if records:
        scored = scored.select(*row_columns, f"{_PREDICTION}.*")
    else:
        scored = scored.withColumnRenamed(_PREDICTION, PREDICTION)
    scored = scored.select(*[_null_for_nan(F, field) for field in scored.schema.fields])
    scored.write.mode("overwrite").parquet(str(staging / SCORES))
    rejects = checked.where(F.col(_REFUSAL).isNotNull()).select(
        *ROW_COLUMNS, F.col(_REFUSAL).alias("reason")
    )
    rejects.write.mode("overwrite").parquet(str(staging / REJECTS))
    checked.unpersist()
    scored_rows = ds.dataset(staging / SCORES).count_rows()
    rejected_rows = ds.dataset(staging / REJECTS).count_rows()
    return ChunkResult(scored_rows + rejected_rows, scored_rows, rejected_rows)


_ADDED_COLUMNS = (*ROW_COLUMNS, _REFUSAL)


# The Spark type of each plain signature type: the column is cast to it before predict, as
# the server builds the frame with the signature's dtypes (whole doubles into a long).
_SPARK_TYPES = {
    DataType.long: "long",
    DataType.integer: "int",
    DataType.double: "double",
    DataType.float: "float",
    DataType.boolean: "boolean",
    DataType.string: "string",
}


def _as_signature_type(F: Any, spec: Any) -> Any:  # noqa: N803
    column = F.col(str(spec.name))
    spark_type = _SPARK_TYPES.get(plain_type(spec))  # type: ignore[arg-type]
    return column if spark_type is None else column.cast(spark_type).alias(str(spec.name))


def _read(spark: Any, source: InputFile) -> Any:
    if source.format == "parquet":
        return spark.read.parquet(str(source.path))
    return spark.read.options(header=True, inferSchema=True).csv(str(source.path))


def _with_positions(frame: Any) -> Any:
    """`input_row`: each row's position in its file."""
    from pyspark.sql import functions as F  # noqa: N812

    frame = frame.withColumn("_id", F.monotonically_increasing_id())
    partition = F.shiftright(F.col("_id"), _ROW_BITS)
    sizes = {
        int(row["partition"]): int(row["count"])
        for row in frame.groupBy(partition.alias("partition")).count().collect()
    }
    offsets: list[Any] = []
    total = 0
    for partition_id in sorted(sizes):
        offsets += [F.lit(partition_id), F.lit(total)]
        total += sizes[partition_id]
    if not offsets:
        return frame.withColumn("input_row", F.lit(0).cast("long")).drop("_id")
    row = F.col("_id").bitwiseAND((1 << _ROW_BITS) - 1)
    return frame.withColumn("input_row", F.create_map(*offsets)[partition] + row).drop("_id")


def _refuse_rows(refusers: list[Refuser], schema: Schema | None) -> Any:
    def refuse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            reasons = np.full(len(batch), None, dtype=object)
            columns = signature_columns(batch, schema)
            for position, reason in refused_rows(refusers, batch, columns).items():
                reasons[position] = reason
            yield batch.assign(**{_REFUSAL: reasons})

    return refuse


def _output_type(
    model: ServedModel, engine: RuleEngine | None, inputs: list[InputFile]
) -> tuple[bool, pa.DataType]:
    """Whether the model answers records, and the Arrow type of its answer: from its
    answer to the first rows it does not refuse, scored as the local engine scores them."""
    scorer = ChunkScorer(model, engine)
    for chunk in read_chunks(inputs, _SAMPLE_ROWS):
        frame = chunk.data.to_pandas() if isinstance(chunk.data, pa.RecordBatch) else chunk.data
        scored = scorer.score(frame)
        if len(scored.scored_rows):
            columns = {name: pa.array(values) for name, values in scored.answers.items()}
            if not scored.records:
                return False, columns[PREDICTION].type
            return True, pa.struct([pa.field(name, array.type) for name, array in columns.items()])
    raise InputError("no row of the input can be scored: nothing tells the output's type")


def _null_for_nan(F: Any, field: Any) -> Any:  # noqa: N803
    """NaN and infinities as null, as /invocations answers them (JSON has neither)."""
    from pyspark.sql.types import DoubleType, FloatType

    column = F.col(field.name)
    if isinstance(field.dataType, DoubleType | FloatType):
        finite = ~F.isnan(column) & (F.abs(column) != float("inf"))
        return F.when(finite, column).alias(field.name)
    return column
