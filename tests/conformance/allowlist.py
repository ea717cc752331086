"""The deliberate differences from `mlflow models serve`, each with its reason.

Everything else must be answered alike: the same status, and for a 200 the same body; for
an error the same `error_code` (messages are ours: they name the problem and never quote
the request, where MLflow's quote it whole, with a stack trace). NaN in an answer is `null`
here (MLflow writes `NaN`, which is not JSON), so answers are compared with NaN as null.
docs/mlflow-compatibility.md's table "Differences from `mlflow models serve`" mirrors
this list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class Difference:
    name: str
    ours: tuple[int, str]  # our status and error_code
    mlflow_status: int  # what MLflow's server answers instead
    reason: str
    cases: tuple[str, ...]  # "model/case" patterns this difference covers

    def covers(self, model: str, case: str) -> bool:
        return any(fnmatchcase(f"{model}/{case}", pattern) for pattern in self.cases)


SCHEMA_MISMATCH = Difference(
    "schema mismatch is 422",
    (422, "INVALID_PARAMETER_VALUE"),
    400,
    "The request is well-formed and only its content does not fit the model's signature: "
    "422 says so, and names the column or param; MLflow answers 400 for every error.",
    (
        "sklearn_logreg_signature/*_positional",
        "sklearn_logreg_signature/*_rows",
        "sklearn_logreg_signature/incompatible_frame",
        "sklearn_logreg_signature/paths_in_values",
        "frame_output/missing_column",
        "frame_output/wrong_type",
        "frame_output/null_in_required",
        "all_types_signature/csv",
        "optional_columns/optional_long_*",
        "optional_columns/csv_optional_empty",
        "optional_columns/required_missing",
        "params_every_type/bad_*",
        "params_every_type/scalar_for_list",
        "tensor_signature/inputs_missing_tensor",
        "tensor_signature/inputs_wrong_shape",
        "tensor_signature/inputs_text",
        "type_hints_list_str/inputs_wrong_type",
        "type_hints_list_str/records",
        "type_hints_list_str/instances",
        "type_hints_list_str/unwrapped_prompt",
        "type_hints_pydantic/inputs_missing_field",
        "type_hints_pydantic/inputs_not_list",
        "chat_array_object_map/inputs_columns",
        "chat_array_object_map/bad_message_shape",
        "chat_array_object_map/messages_not_list",
        "single_text_column/unwrapped_input",
    ),
)
LOSSY_CAST = Difference(
    "a cast that would change a value is refused",
    (422, "INVALID_PARAMETER_VALUE"),
    200,
    "MLflow casts 35.5 to 35 for a long column, true to 1.0 for a double, 2**40 to 0 "
    "for an integer and numbers to text for a string column, then predicts on values the "
    "client did not send. A decision on a changed value is worse than an error that names "
    'the column. (Text that is exactly a number, like "3.5" for a double, is converted '
    "as MLflow does.)",
    (
        "frame_output/decimal_for_long",
        "frame_output/bool_for_double",
        "all_types_signature/int_overflow_for_integer",
        "single_text_column/inputs_numbers",
    ),
)
MISSING_IN_REQUIRED = Difference(
    "missing values in a required column are refused",
    (422, "INVALID_PARAMETER_VALUE"),
    200,
    "The signature says the column is required; MLflow hands a NaN (or a null read as NaN) "
    "to the model, which predicts on a value that is not there. We name the column; an "
    "optional column takes missing values as MLflow does.",
    ("frame_output/nan_literal_for_double",),
)
PARAMS_NOT_OBJECT = Difference(
    "params must be an object",
    (400, "BAD_REQUEST"),
    200,
    "MLflow ignores a `params` that is not a JSON object and predicts with the defaults; "
    "the client meant something by it, so we say it was not used.",
    ("*/params_not_object",),
)
MEDIA_TYPE_BODY = Difference(
    "415 with a JSON error body",
    (415, "UNSUPPORTED_MEDIA_TYPE"),
    415,
    "MLflow answers these 415s in plain text; every error of ours has the JSON error body.",
    (
        "*/unsupported_content_type",
        "*/unknown_content_parameter",
        "*/latin1_charset",
        "*/utf16_charset",
    ),
)
MODEL_FAULT = Difference(
    "a model that raises on valid input is a 500",
    (500, "INTERNAL_ERROR"),
    400,
    "The input passed the model's signature, so the failure is the model's: a 5xx pages "
    "the operator instead of telling the client to change a valid request. (Without a "
    "signature nothing was checked, and we answer 400 as MLflow does.)",
    ("failing_model/*", "chat_array_object_map/inputs_records"),
)
DATA_ALIAS = Difference(
    "`data` as a list of records",
    (200, ""),
    400,
    'Many hand-written clients send `{"data": [records]}`; it is read as '
    "`dataframe_records`. Anything else under `data` is a 400 naming `dataframe_split`.",
    ("*/records_in_data_alias",),
)
ROWS_PAST_THE_LIMIT = Difference(
    "rows past MAX_REQUEST_ROWS are refused",
    (413, "RESOURCE_LIMIT_EXCEEDED"),
    200,
    "MLflow builds and predicts whatever arrives: 4 MB of JSON can ask for a million rows "
    "and hundreds of MB of memory. We refuse a table past MAX_REQUEST_ROWS (10000 by "
    "default) or MAX_REQUEST_CELLS, from the body's bytes, before any of it is built.",
    ("*/rows_past_the_limit*",),
)

DIFFERENCES = (
    SCHEMA_MISMATCH,
    LOSSY_CAST,
    MISSING_IN_REQUIRED,
    PARAMS_NOT_OBJECT,
    MEDIA_TYPE_BODY,
    MODEL_FAULT,
    DATA_ALIAS,
    ROWS_PAST_THE_LIMIT,
)


class _Covers(Protocol):
    def covers(self, model: str, case: str) -> bool: ...


_Listed = TypeVar("_Listed", bound=_Covers)


def covering(differences: Iterable[_Listed], model: str, case: str) -> _Listed | None:
    """The one difference of a list that covers model/case, or None: two covering the same
    case is a mistake in the list (MLflow's here, MLServer's in v2_allowlist)."""
    found = [difference for difference in differences if difference.covers(model, case)]
    assert len(found) <= 1, f"{model}/{case} is covered by {len(found)} differences"
    return found[0] if found else None


def difference_for(model: str, case: str) -> Difference | None:
    return covering(DIFFERENCES, model, case)
