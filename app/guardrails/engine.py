"""The rules checked over a table, vectorised: one NumPy mask per rule, no loop over rows.

`RuleEngine(guardrails).check_inputs(columns)` before predict and `.check_outputs(columns,
outputs)` after it return, per rule, the rows it checked and the positions of the rows
that broke it. Columns are any mapping of name to values (a DataFrame, or lists by column
name as the scoring path holds them); a column a table lacks counts as missing values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.guardrails.rules import INPUT, OUTPUT, Check, Guardrails, Rule, Target

Mask = npt.NDArray[np.bool_]
Columns = Mapping[str, Any] | pd.DataFrame
# Up to this many allowed values are compared one by one over the column (cheaper than
# np.isin's sort on small tables); more go through np.isin.
_SMALL_SET = 32
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}


@dataclass(frozen=True)
class RuleResult:
    """One rule over one table: rows checked, and the positions (0-based) of those broken."""

    rule: Rule
    rows: int
    broken: npt.NDArray[np.intp]

    @property
    def violations(self) -> int:
        return len(self.broken)


@dataclass
class _Table:
    """Columns of one table, each turned into an array once however many rules read it."""

    inputs: Columns
    outputs: Columns | None
    rows: int
    _arrays: dict[tuple[str, str], npt.NDArray[Any]] = field(default_factory=dict)

    def values(self, target: Target) -> npt.NDArray[Any]:
        key = (target.side, target.name)
        found = self._arrays.get(key)
        if found is None:
            source = self.inputs if target.side == INPUT else self.outputs
            found = self._arrays[key] = _array(source, target.name, self.rows)
        return found


def _array(source: Columns | None, name: str, rows: int) -> npt.NDArray[Any]:
    if source is None or name not in source:
        return np.full(rows, None, dtype=object)
    values = source[name]
    if isinstance(values, pd.Series):
        return values.to_numpy()
    return np.asarray(values)


def _nulls(values: npt.NDArray[Any]) -> Mask:
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind in "iubUS":
        return np.zeros(len(values), dtype=bool)
    return np.asarray(pd.isna(values), dtype=bool)


def _numbers(values: npt.NDArray[Any], nulls: Mask) -> npt.NDArray[np.float64]:
    """The values as floats, missing ones as NaN; a value that is no number is NaN too and
    breaks the bound (the signature lets no such value through for a numeric column)."""
    if values.dtype.kind in "iufb":
        return values.astype(float, copy=False)
    try:
        return np.asarray(np.where(nulls, np.nan, values), dtype=float)
    except (TypeError, ValueError):
        return np.full(len(values), np.inf)


def _allowed(values: npt.NDArray[Any], allowed: list[Any]) -> Mask:
    if len(allowed) > _SMALL_SET:
        return np.asarray(np.isin(values, np.asarray(allowed, dtype=object)), dtype=bool)
    found = np.zeros(len(values), dtype=bool)
    for value in allowed:
        found |= values == value
    return found


def _fails(check: Check, table: _Table) -> tuple[Mask, Mask]:
    """Rows breaking `check` (a missing value breaks only not_null), and the missing rows."""
    values = table.values(check)
    nulls = _nulls(values)
    broken = nulls.copy() if check.not_null else np.zeros(table.rows, dtype=bool)
    if check.numeric:
        numbers = _numbers(values, nulls)
        present = ~nulls
        with np.errstate(invalid="ignore"):
            if check.min is not None:
                broken |= present & ~(numbers >= check.min)
            if check.max is not None:
                broken |= present & ~(numbers <= check.max)
            if check.gt is not None:
                broken |= present & ~(numbers > check.gt)
            if check.lt is not None:
                broken |= present & ~(numbers < check.lt)
    if check.allowed is not None:
        broken |= ~nulls & ~_allowed(values, check.allowed)
    return broken, nulls


class _CompiledRule:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._check = rule.check

    def broken(self, table: _Table) -> Mask:
        rule = self.rule
        if self._check is not None:
            return _fails(self._check, table)[0]
        if rule.when is not None and rule.then is not None:
            when_broken, when_nulls = _fails(rule.when, table)
            return ~when_broken & ~when_nulls & _fails(rule.then, table)[0]
        assert rule.compare is not None
        left_target, right_target = rule.compare.targets()
        left, right = table.values(left_target), table.values(right_target)
        present = ~_nulls(left) & ~_nulls(right)
        if rule.compare.op in ("eq", "ne"):
            holds = np.asarray(_OPERATORS[rule.compare.op](left, right), dtype=bool)
        else:
            with np.errstate(invalid="ignore"):
                holds = _OPERATORS[rule.compare.op](
                    _numbers(left, ~present), _numbers(right, ~present)
                )
        return np.asarray(present & ~holds, dtype=bool)


class RuleEngine:
    """The rules of one file, split by when they can run: before predict or after."""

    def __init__(self, guardrails: Guardrails) -> None:
        self.guardrails = guardrails
        compiled = [_CompiledRule(rule) for rule in guardrails.rules]
        self.input_rules = [c for c in compiled if c.rule.side == INPUT]
        self.output_rules = [c for c in compiled if c.rule.side == OUTPUT]

    def check_inputs(self, inputs: Columns, rows: int) -> list[RuleResult]:
        """Every input rule over a table of `rows` rows."""
        return _run(self.input_rules, _Table(inputs, None, rows))

    def check_outputs(self, inputs: Columns, outputs: Columns, rows: int) -> list[RuleResult]:
        """Every rule reading an output field, over the model's answer for those rows."""
        return _run(self.output_rules, _Table(inputs, outputs, rows))

    def check(self, inputs: Columns, outputs: Columns | None = None) -> list[RuleResult]:
        """Every rule that can run on `inputs` (and `outputs`, when given): for tables
        scored outside the server."""
        rows = len(inputs) if isinstance(inputs, pd.DataFrame) else _length(inputs)
        results = self.check_inputs(inputs, rows)
        if outputs is not None:
            results += self.check_outputs(inputs, outputs, rows)
        return results


def _run(rules: list[_CompiledRule], table: _Table) -> list[RuleResult]:
    return [
        RuleResult(compiled.rule, table.rows, np.flatnonzero(compiled.broken(table)))
        for compiled in rules
    ]


def _length(columns: Mapping[str, Any]) -> int:
    for values in columns.values():
        return len(values)
    return 0
