"""Rows refused before predict, and why: a list of refusers, each a check over a chunk.

A refuser takes the chunk as read, with its columns as the server's JSON path holds them
(`signature_columns`, made once per chunk for every refuser and the predict call), and
returns refusals: a boolean mask over its rows and
the reason for those rows. A row takes the reason of the first refuser that marks it, and
is written to the rejects output instead of being scored. `build_refusers` makes the list
for a model: its signature's check, then its enforced input rules (batch_scoring.guardrails).

The signature refuser applies the server's own check of a JSON request
(app.protocol.validation.check_columns) to the columns as the JSON path sees them. The
whole chunk is checked at once, at C speed when every value fits; when the check refuses
it, the chunk is halved until each refused row stands alone, so each reason is what
/invocations answers for that row sent by itself, and no value is quoted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from mlflow.types import Schema

from app.errors import ServingError
from app.guardrails.engine import RuleEngine
from app.protocol.frames import has_columns
from app.protocol.validation import check_columns, require_columns
from app.runtime.model import ServedModel
from batch_scoring.guardrails import refusals

Mask = np.ndarray[Any, np.dtype[np.bool_]]
Refusal = tuple[Mask, str]
Columns = dict[str, Any]  # signature_columns: name -> values (an object array)
Refuser = Callable[[pd.DataFrame, Columns], Sequence[Refusal]]
Positions = np.ndarray[Any, np.dtype[np.intp]]


def build_refusers(model: ServedModel, engine: RuleEngine | None) -> list[Refuser]:
    """The refusers for `model` and the engine of its rules, in the order their reasons
    win: the signature's, then the enforced input rules' (the server's order too)."""
    refusers: list[Refuser] = []
    # No signature: MLflow's own enforcement, at predict, refuses rows.
    if has_columns(model.input_schema):
        assert model.input_schema is not None
        refusers.append(SignatureRefuser(model.input_schema))
    if engine is not None and engine.input_rules:
        refusers.append(InputRulesRefuser(model, engine))
    return refusers


def refused_rows(
    refusers: Sequence[Refuser], frame: pd.DataFrame, columns: Columns
) -> dict[int, str]:
    """The chunk's refused rows (positions), each with the reason of the first refuser
    that marks it."""
    reasons: dict[int, str] = {}
    for refuser in refusers:
        for mask, reason in refuser(frame, columns):
            for position in np.flatnonzero(mask).tolist():
                reasons.setdefault(position, reason)
    return reasons


def signature_columns(frame: pd.DataFrame, schema: Schema | None) -> dict[str, Any]:
    """The chunk's columns as the server's JSON path holds them: Python values (numpy
    scalars as int, float, bool), missing values (NaN, None, NaT) as None; only the signature's
    columns (the JSON path ignores others), every column without a signature."""
    names = (
        [name for name in schema.input_names() if name in frame.columns]
        if has_columns(schema) and schema is not None
        else list(frame.columns)
    )
    columns = {}
    for name in names:
        values = frame[name].to_numpy(dtype=object)
        values[pd.isna(values)] = None  # a missing value is JSON's null, whatever its dtype
        columns[str(name)] = values
    return columns


class SignatureRefuser:
    """Rows the server refuses against the signature: a missing required column, a missing
    value where one is required, a value of another type or out of range."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def __call__(self, frame: pd.DataFrame, columns: Columns) -> list[Refusal]:
        rows = len(frame)
        try:
            require_columns(
                set(self.schema.required_input_names()).difference(map(str, frame.columns)),
                self.schema,
            )
        except ServingError as error:
            return [(np.ones(rows, np.bool_), error.message)]
        reasons: dict[int, str] = {}
        self._refuse(columns, np.arange(rows), reasons)
        by_reason: dict[str, Mask] = {}
        for position, reason in reasons.items():
            by_reason.setdefault(reason, np.zeros(rows, np.bool_))[position] = True
        return list((mask, reason) for reason, mask in by_reason.items())

    def _refuse(self, columns: dict[str, Any], rows: Positions, reasons: dict[int, str]) -> None:
        try:
            check_columns(
                {name: values[rows].tolist() for name, values in columns.items()}, self.schema
            )
        except ServingError as error:
            if len(rows) == 1:
                reasons[int(rows[0])] = error.message
                return
            middle = len(rows) // 2
            self._refuse(columns, rows[:middle], reasons)
            self._refuse(columns, rows[middle:], reasons)


class InputRulesRefuser:
    """Rows breaking an enforced input rule of the version, checked on the columns as the
    server's JSON path holds them."""

    def __init__(self, model: ServedModel, engine: RuleEngine) -> None:
        self.schema = model.input_schema
        self.engine = engine

    def __call__(self, frame: pd.DataFrame, columns: Columns) -> list[Refusal]:
        return refusals(self.engine.check_inputs(columns, len(frame)), len(frame), "input")
