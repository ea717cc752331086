"""The rules checked over a table, vectorised: one NumPy mask per rule, no loop over rows.

`RuleEngine(guardrails).check_inputs(columns)` before predict and `.check_outputs(columns,
outputs)` after it return, per rule, the rows it checked and the positions of the rows
that broke it. Columns are any mapping of name to values (a DataFrame, or lists by column
name as the scoring path holds them); a column a table lacks counts as missing values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.guardrails.rules import INPUT, OUTPUT, Check, Guardrails, Rule

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


@dataclass(slots=True)
class RuleResult:
    """One rule over one table: rows checked, and the positions (0-based) of those broken."""

    rule: Rule
    rows: int
    broken: npt.NDArray[np.intp]

    @property
    def violations(self) -> int:
        return len(self.broken)


class _Table:
    """Columns of one table, each turned into arrays once however many rules read it."""

    __slots__ = ("_arrays", "_nulls", "_numbers", "inputs", "outputs", "rows")

    def __init__(self, inputs: Columns, outputs: Columns | None, rows: int) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.rows = rows
        self._arrays: dict[tuple[bool, str], npt.NDArray[Any]] = {}
        self._nulls: dict[tuple[bool, str], Mask] = {}
        self._numbers: dict[tuple[bool, str], npt.NDArray[np.float64]] = {}

    def values(self, key: tuple[bool, str]) -> npt.NDArray[Any]:
        found = self._arrays.get(key)
        if found is None:
            source = self.inputs if key[0] else self.outputs
            found = self._arrays[key] = _array(source, key[1], self.rows)
        return found

    def nulls(self, key: tuple[bool, str]) -> Mask:
        found = self._nulls.get(key)
        if found is None:
            found = self._nulls[key] = _nulls(self.values(key))
        return found

    def numbers(self, key: tuple[bool, str]) -> npt.NDArray[np.float64]:
        """The values as floats, missing ones NaN (NaN breaks no bound: only not_null)."""
        found = self._numbers.get(key)
        if found is None:
            found = self._numbers[key] = _numbers(self.values(key), self.nulls(key))
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
    """A value that is no number becomes infinite and breaks an upper bound (the signature
    lets no such value through for a numeric column)."""
    if values.dtype.kind in "iufb":
        return values.astype(float, copy=False)
    try:
        return np.asarray(np.where(nulls, np.nan, values), dtype=float)
    except (TypeError, ValueError):
        return np.full(len(values), np.inf)


class _CompiledCheck:
    """A check's constraints as plain values, read once from the rules file."""

    __slots__ = ("allowed", "bounds", "key", "not_null")

    def __init__(self, check: Check) -> None:
        self.key = (check.side == INPUT, check.name)
        self.not_null = check.not_null
        # Each bound as (operator that breaks it, limit): NaN compares false, so a missing
        # value breaks none.
        candidates = ((np.less, check.min), (np.greater, check.max))
        exclusive = ((np.less_equal, check.gt), (np.greater_equal, check.lt))
        self.bounds = [(op, limit) for op, limit in (*candidates, *exclusive) if limit is not None]
        self.allowed = None if check.allowed is None else list(check.allowed)

    def broken(self, table: _Table) -> Mask:
        """Rows breaking the check (a missing value breaks only not_null)."""
        key = self.key
        broken: Mask | None = table.nulls(key) if self.not_null else None
        if self.bounds:
            numbers = table.numbers(key)
            for breaks, limit in self.bounds:
                beyond = breaks(numbers, limit)
                broken = beyond if broken is None else broken | beyond
        if self.allowed is not None:
            outside = ~table.nulls(key) & ~_allowed(table.values(key), self.allowed)
            broken = outside if broken is None else broken | outside
        assert broken is not None  # a check has a constraint (rules.Check)
        return broken

    def holds(self, table: _Table) -> Mask:
        """Rows where the check holds on a present value (a `when` condition)."""
        return ~self.broken(table) & ~table.nulls(self.key)


def _allowed(values: npt.NDArray[Any], allowed: list[Any]) -> Mask:
    if len(allowed) > _SMALL_SET:
        return np.asarray(np.isin(values, np.asarray(allowed, dtype=object)), dtype=bool)
    found = values == allowed[0]
    for value in allowed[1:]:
        found = found | (values == value)
    return np.asarray(found, dtype=bool)


class _CompiledRule:
    __slots__ = ("check", "compare", "rule", "then", "when")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        check = rule.check
        self.check = None if check is None else _CompiledCheck(check)
        self.when = None if rule.when is None else _CompiledCheck(rule.when)
        self.then = None if rule.then is None else _CompiledCheck(rule.then)
        self.compare = None
        if rule.compare is not None:
            left, right = rule.compare.targets()
            self.compare = (
                (left.side == INPUT, left.name),
                _OPERATORS[rule.compare.op],
                (right.side == INPUT, right.name),
                rule.compare.op in ("eq", "ne"),
            )

    def broken(self, table: _Table) -> Mask:
        if self.check is not None:
            return self.check.broken(table)
        if self.when is not None and self.then is not None:
            return self.when.holds(table) & self.then.broken(table)
        assert self.compare is not None
        left, operator, right, on_values = self.compare
        present = ~table.nulls(left) & ~table.nulls(right)
        if on_values:
            holds = operator(table.values(left), table.values(right))
        else:
            holds = operator(table.numbers(left), table.numbers(right))
        return np.asarray(present & ~holds, dtype=bool)


class RuleEngine:
    """The rules of one file, split by when they can run: before predict or after."""

    def __init__(self, guardrails: Guardrails) -> None:
        self.guardrails = guardrails
        compiled = [_CompiledRule(rule) for rule in guardrails.rules]
        self.input_rules = [c for c in compiled if c.rule.side == INPUT]
        self.output_rules = [c for c in compiled if c.rule.side == OUTPUT]
        # The output fields the rules read, for gathering them from an answer.
        self.output_fields = sorted(
            {t.name for c in self.output_rules for t in c.rule.targets() if t.side == OUTPUT}
        )

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


_NONE_BROKEN: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)


def _run(rules: list[_CompiledRule], table: _Table) -> list[RuleResult]:
    results = []
    for compiled in rules:
        broken = compiled.broken(table)
        rows = np.flatnonzero(broken) if broken.any() else _NONE_BROKEN
        results.append(RuleResult(compiled.rule, table.rows, rows))
    return results


def _length(columns: Mapping[str, Any]) -> int:
    for values in columns.values():
        return len(values)
    return 0
