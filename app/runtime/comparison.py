"""Two answers to one request compared field by field: the served model's and a shadow's.

Any PyFunc output is compared, in the JSON-able form the server answers with: records (a
DataFrame), a list of values or of lists (a Series, an array), a mapping of columns, one
value. Each becomes rows of named fields; unnamed values are the field UNNAMED_FIELD,
columns of a 2-D array the fields "0", "1", ... A field numeric on both sides is compared
by its absolute difference; any other field by the pair (primary value, shadow value) and
whether the two are equal.

Only output values are kept, as labels, bounded in number like the served model's counted
values (app.runtime.scoring): never an input value.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

UNNAMED_FIELD = "output"
# Distinct field names and distinct values per field labelled apart; more are "other".
MAX_COMPARED_FIELDS = 32
MAX_COMPARED_VALUES = 32
OTHER = "other"
# The label of a field one side answered and the other did not.
MISSING = "missing"
_ABSENT = object()
_LABEL_CHARS = 64


@dataclass
class Comparison:
    """The comparison of one request's two answers."""

    rows: int = 0  # rows compared
    mismatched: int = 0  # primary rows that could not be paired (the row counts differ)
    # (field, primary label, shadow label, whether the two values are equal) -> rows
    pairs: Counter[tuple[str, str, str, bool]] = field(default_factory=Counter)
    # field -> absolute differences, one per compared row
    differences: dict[str, list[float]] = field(default_factory=dict)


class BoundedLabels:
    """Labels of fields and values, at most MAX_COMPARED_* distinct ones, then "other", so
    a free-text output cannot flood /metrics with series. One per worker: not thread-safe,
    used by the shadow's one thread."""

    def __init__(self) -> None:
        self._fields: set[str] = set()
        self._values: dict[str, set[str]] = {}

    def field(self, name: str) -> str:
        return _bounded(name[:_LABEL_CHARS], self._fields, MAX_COMPARED_FIELDS)

    def value(self, field_label: str, value: Any) -> str:
        if value is _ABSENT:
            text = MISSING
        else:
            text = "none" if value is None else str(value)[:_LABEL_CHARS]
        seen = self._values.setdefault(field_label, set())
        return _bounded(text, seen, MAX_COMPARED_VALUES)


def output_rows(outputs: Any) -> list[dict[str, Any]]:
    """The rows of named fields of a JSON-able model output."""
    if isinstance(outputs, dict):
        columns = {str(name): value for name, value in outputs.items()}
        lengths = {len(v) for v in columns.values() if isinstance(v, list)}
        if len(lengths) == 1 and all(isinstance(v, list) for v in columns.values()):
            (length,) = lengths
            return [{name: value[i] for name, value in columns.items()} for i in range(length)]
        return [columns]
    if isinstance(outputs, list):
        return [_row(item) for item in outputs]
    return [{UNNAMED_FIELD: outputs}]


def compare_outputs(primary: Any, shadow: Any, labels: BoundedLabels) -> Comparison:
    """Compare the two outputs row by row, field by field."""
    primary_rows, shadow_rows = output_rows(primary), output_rows(shadow)
    comparison = Comparison()
    if len(primary_rows) != len(shadow_rows):
        comparison.mismatched = len(primary_rows)
        return comparison
    for primary_row, shadow_row in zip(primary_rows, shadow_rows, strict=True):
        comparison.rows += 1
        for name in primary_row.keys() | shadow_row.keys():
            field_label = labels.field(name)
            primary_value = primary_row.get(name, _ABSENT)
            shadow_value = shadow_row.get(name, _ABSENT)
            if name in primary_row and name in shadow_row:
                difference = _difference(primary_value, shadow_value)
                if difference is not None:
                    comparison.differences.setdefault(field_label, []).append(difference)
                    continue
            pair = (
                field_label,
                labels.value(field_label, primary_value),
                labels.value(field_label, shadow_value),
                _equal(primary_value, shadow_value),
            )
            comparison.pairs[pair] += 1
    return comparison


def _row(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return {str(name): value for name, value in item.items()}
    if isinstance(item, list):
        return {str(index): value for index, value in enumerate(item)}
    return {UNNAMED_FIELD: item}


def _equal(primary: Any, shadow: Any) -> bool:
    """Equality of the values themselves: two labels may be equal ("other", a cut text)
    when the values are not."""
    try:
        return bool(primary == shadow)
    except Exception:  # an object whose == does not give one truth value
        return repr(primary) == repr(shadow)


def _difference(primary: Any, shadow: Any) -> float | None:
    """|primary - shadow| when both are finite numbers (not booleans), else None."""
    if not (_is_number(primary) and _is_number(shadow)):
        return None
    difference = abs(float(primary) - float(shadow))
    return difference if math.isfinite(difference) else None


def _is_number(value: Any) -> bool:
    # numpy's bool_ is no Real; Python's bool is, and is a class label rather than a number.
    return isinstance(value, Real) and not isinstance(value, bool)


def _bounded(text: str, seen: set[str], limit: int) -> str:
    if text in seen:
        return text
    if len(seen) >= limit:
        return OTHER
    seen.add(text)
    return text
