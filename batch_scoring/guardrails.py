"""The business rules of the version scored, applied to each chunk as the server applies
them to each request (app.runtime.guardrails): enforced input rules refuse rows before
predict, enforced output rules refuse rows after it. A refused row gets the words
/invocations answers when that row is sent alone; warn and shadow rules refuse nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from app.errors import ModelLoadError
from app.guardrails.engine import Columns as RuleColumns
from app.guardrails.engine import RuleEngine, RuleResult
from app.guardrails.rules import GuardrailsError
from app.runtime.guardrails import load_guardrails, output_columns, refusal_message
from app.runtime.model import ServedModel
from batch_scoring.answers import PREDICTION, Columns

_ROW_ALONE = np.zeros(1, dtype=np.intp)
# Rows refused (a mask over the chunk) and the reason: what a refuser returns too.
Refusal = tuple[npt.NDArray[np.bool_], str]


def rule_engine(model: ServedModel) -> RuleEngine | None:
    """The engine of the version's rules, None when it has none; rules that do not fit
    its signature stop the run before any row is read, as they stop the server."""
    try:
        guardrails = load_guardrails(model)
    except GuardrailsError as error:
        raise ModelLoadError(f"the version's guardrails are unusable: {error}") from None
    return None if guardrails is None else RuleEngine(guardrails)


def enforces_output_rules(engine: RuleEngine | None) -> bool:
    return engine is not None and any(c.rule.mode == "enforce" for c in engine.output_rules)


def refuse_outputs(
    engine: RuleEngine, inputs: Mapping[str, Any], answers: Columns, records: bool, rows: int
) -> list[Refusal]:
    """Rows whose answer breaks an enforced output rule; `inputs` are those rows' columns,
    `answers` their answers by column (batch_scoring.answers), records' fields when
    `records`. The rules' table is the server's (output_columns): for records, every field
    the rules read, null where the answer lacks it, even when no record has any field."""
    table: RuleColumns
    if records:
        table = {name: answers.get(name, [None] * rows) for name in engine.output_fields}
    else:
        table, rows = output_columns(answers[PREDICTION], engine, rows)
    return refusals(engine.check_outputs(inputs, table, rows), rows, "output")


def refusals(results: list[RuleResult], rows: int, side: str) -> list[Refusal]:
    """Refused rows grouped by the enforced rules they break, each group with the message
    a request of that row alone is answered."""
    enforced = [result for result in results if result.rule.mode == "enforce" and result.violations]
    if not enforced:
        return []
    broken = np.zeros((len(enforced), rows), dtype=np.bool_)
    for index, result in enumerate(enforced):
        broken[index, result.broken] = True
    groups: dict[tuple[int, ...], npt.NDArray[np.bool_]] = {}
    for position in np.flatnonzero(
        broken.any(axis=0)
    ).tolist():  # refused rows only: the rest stays vectorised
        key = tuple(np.flatnonzero(broken[:, position]).tolist())
        groups.setdefault(key, np.zeros(rows, dtype=np.bool_))[position] = True
    return [
        (mask, refusal_message([RuleResult(enforced[i].rule, 1, _ROW_ALONE) for i in key], side))
        for key, mask in groups.items()
    ]
