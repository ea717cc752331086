"""The deliberate differences from Seldon MLServer 1.7.1 (mlserver-mlflow) on the Open
Inference Protocol, each with its reason.

Everything else must be answered alike: the same status, and for a 200 the same body
but for `id` (MLServer makes up a UUID, ours is the request's X-Request-ID). The table of
docs/v2-protocol.md is rendered from this list (docs/hooks/v2_conformance_table.py), and
tests/conformance/test_v2_conformance.py checks MLServer still answers each case as listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from tests.conformance.allowlist import covering


@dataclass(frozen=True)
class V2Difference:
    name: str
    ours: int  # our status
    mlserver: int  # MLServer's
    reason: str
    cases: tuple[str, ...]  # "model/case" patterns this difference covers
    # For a difference in a 200's body: the top-level fields and the output tensors (by
    # name) that differ; the rest must be equal.
    fields: tuple[str, ...] = ()

    def covers(self, model: str, case: str) -> bool:
        return any(fnmatchcase(f"{model}/{case}", pattern) for pattern in self.cases)


SCHEMA_MISMATCH = V2Difference(
    "input that does not fit the signature",
    422,
    500,
    "A missing column or tensor, decimals for a `long` column, numbers for a `string` "
    "column: ours is a 422 naming the column or tensor, before the model runs; MLServer "
    "hands the frame to MLflow, whose schema enforcement raises, and answers 500 with the "
    "stack trace as plain text.",
    (
        "*/missing_input",
        "frame_output/decimal_for_long",
        "named_tensors/missing_tensor",
        "text_column/numbers_for_text",
    ),
)
BAD_TENSOR = V2Difference(
    "a tensor whose data does not fit its datatype or shape",
    400,
    500,
    "Text in an INT64 tensor, a shape that does not hold its data, no inputs: ours is a "
    "400 naming the tensor, its datatype or shape; MLServer's codecs raise and it answers "
    "500 with a stack trace.",
    ("frame_output/text_for_int64", "frame_output/shape_mismatch", "frame_output/no_inputs"),
)
BAD_BODY = V2Difference(
    "a body that is no V2 request",
    400,
    422,
    'Not JSON, or a datatype the protocol does not have: ours is a 400 in V2\'s `{"error"}` '
    'body; MLServer answers FastAPI\'s 422 `{"detail": [...]}`, which quotes the input.',
    ("frame_output/not_json", "frame_output/unknown_datatype"),
)
WHOLE_NUMBERS_FOR_DOUBLE = V2Difference(
    "whole numbers for a double column",
    200,
    500,
    "An INT64 tensor for a `double` column is converted, as /invocations and `mlflow "
    "models serve` convert whole numbers; MLServer's pandas codec makes an int64 column "
    "that MLflow's schema enforcement refuses for a double, and answers 500.",
    ("frame_output/int_for_double",),
)
LIST_OUTPUT = V2Difference(
    "a model that returns a list of numbers",
    200,
    500,
    "MLServer 1.7.1 has no codec for a Python list that is not text and fails after the "
    "model predicted; ours answers it as the one tensor `output-1`, as it answers an array.",
    ("text_column/text",),
)
ROWS_PAST_THE_LIMIT = V2Difference(
    "rows past MAX_REQUEST_ROWS",
    413,
    200,
    "The declared shapes are bounded before any value is read (MAX_REQUEST_ROWS, "
    "MAX_REQUEST_CELLS, MAX_REQUEST_COLUMNS), as for /invocations; MLServer builds and "
    "predicts whatever arrives.",
    ("*/rows_past_the_limit",),
)

REGISTRY_IDENTITY = V2Difference(
    "the demo's model_version output",
    200,
    200,
    "Ours serves the demo from the registry and hands the model its registry name and "
    "version (model_config), which it writes into each row; MLServer loads the exported "
    "directory, with no registry behind it, and the model writes an empty version.",
    ("demo/one_row", "demo/two_rows"),
    fields=("model_version",),
)
METADATA_VERSIONS = V2Difference(
    "the served version in the model metadata",
    200,
    200,
    "Ours lists the registry version it serves in `versions`, as the protocol describes "
    "the field; MLServer lists none, although its answers carry the version.",
    ("demo/metadata",),
    fields=("versions",),
)

V2_DIFFERENCES = (
    SCHEMA_MISMATCH,
    BAD_TENSOR,
    BAD_BODY,
    WHOLE_NUMBERS_FOR_DOUBLE,
    LIST_OUTPUT,
    ROWS_PAST_THE_LIMIT,
    REGISTRY_IDENTITY,
    METADATA_VERSIONS,
)


def v2_difference_for(model: str, case: str) -> V2Difference | None:
    return covering(V2_DIFFERENCES, model, case)
