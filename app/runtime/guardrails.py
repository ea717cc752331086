"""The business rules of the version serving, applied to each scoring request.

Input rules run on the request's table before predict, output rules on the model's answer
after it: in the predict thread over a batch's combined table, once however many requests
share it (app.runtime.batching), or on the request alone (app.runtime.scoring, for
requests that are not batched). Each rule's rows are counted; an
`enforce` rule broken refuses the request (422, naming rule, column and rows, never a
value), `warn` logs it and answers, `shadow` only counts. The breaker, when the rules file
configures one, pauses scoring (503) and takes this worker out of readiness while open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import Counter

from app.errors import GuardrailBreakerOpenError, GuardrailViolationError
from app.guardrails.breaker import Breaker
from app.guardrails.engine import Columns, RuleEngine, RuleResult
from app.guardrails.rules import Guardrails, check_fits, fields_of_signature, parse_rules
from app.observability.metrics import ServingMetrics
from app.readiness import Readiness, breaker_reset_stamp
from app.runtime.model import ServedModel

logger = logging.getLogger(__name__)

# Row positions named in a refusal, and rules named, at most.
MAX_ROWS_NAMED = 10
MAX_RULES_NAMED = 5
BREAKER_POLL_SECONDS = 0.5
_UNREADABLE_INPUT = (
    "this model version enforces business rules on its input columns, and this input is "
    "not a table of columns they can be checked on; send dataframe_records or "
    "dataframe_split"
)


def load_guardrails(model: ServedModel) -> Guardrails | None:
    """The version's rules, parsed and checked against its signature again (they were at
    attach time, but a file may have been edited in the registry by hand)."""
    text = model.description.guardrails_text
    if text is None:
        return None
    guardrails = parse_rules(text)
    check_fits(guardrails, fields_of_signature(model.description.signature))
    return guardrails


@dataclass(slots=True)
class Verdict:
    """One request as the rules judged it: its rows, whether it broke a rule the breaker
    counts, and its refusal when it broke an enforced one."""

    rows: int
    counts_for_breaker: bool = False
    refusal: GuardrailViolationError | None = None


class RequestGuardrails:
    """Per worker: the engine, each rule's counters, and the breaker's state."""

    def __init__(
        self, guardrails: Guardrails, metrics: ServingMetrics, readiness: Readiness
    ) -> None:
        self.guardrails = guardrails
        self.engine = RuleEngine(guardrails)
        self._metrics = metrics
        self._readiness = readiness
        self._counters: dict[str, tuple[Counter, Counter]] = {}
        for rule in guardrails.rules:
            labels = (rule.id, rule.target_label, rule.severity, rule.mode)
            self._counters[rule.id] = (
                metrics.guardrail_checked_rows.labels(*labels),
                metrics.guardrail_violating_rows.labels(*labels),
            )
        config = guardrails.rules_file.breaker
        self.breaker = Breaker(config) if config is not None else None
        self._breaker_severity = config.rule_severity if config is not None else None
        self._was_open = False
        self._ready_before_open = False

    def refuse_while_open(self) -> None:
        """Before anything else: raise while the breaker is open."""
        breaker = self.breaker
        if breaker is None:
            return
        now_open = breaker.is_open()
        if now_open != self._was_open:
            self._on_breaker_change(now_open)
        if now_open:
            raise GuardrailBreakerOpenError(
                "scoring is paused: too many recent requests broke a "
                f"{self._breaker_severity} business rule; retry later"
            )

    def check_input(self, data: Any, rows: int) -> Verdict:
        """Before predicting one request alone: raise when an enforced input rule is broken."""
        verdict = self.judge_inputs(data, [rows])[0]
        if verdict.refusal is not None:
            raise verdict.refusal
        return verdict

    def check_output(self, data: Any, outputs: Any, verdict: Verdict) -> None:
        """After predicting one request alone: raise when an enforced output rule is broken."""
        self.judge_outputs(data, outputs, [verdict.rows], [verdict])
        if verdict.refusal is not None:
            raise verdict.refusal

    def judge_inputs(self, data: Any, shares: Sequence[int]) -> list[Verdict]:
        """The input rules over a group's table (the requests' rows one after another, as
        `shares` counts them) in one vectorised pass; each request judged on its own rows."""
        verdicts = [Verdict(rows) for rows in shares]
        if not self.engine.input_rules:
            return verdicts
        columns = _input_columns(data)
        if columns is None:
            for verdict in verdicts:
                verdict.refusal = GuardrailViolationError(_UNREADABLE_INPUT)
            return verdicts
        self._judge(self.engine.check_inputs(columns, sum(shares)), verdicts, "input")
        return verdicts

    def judge_outputs(
        self, data: Any, outputs: Any, shares: Sequence[int], verdicts: list[Verdict]
    ) -> None:
        """The output rules over the group's answers (one entry per row when it is more
        than one request), each request judged on its own rows; the breaker counts each."""
        if self.engine.output_rules:
            inputs = _input_columns(data) or {}
            table, rows = output_columns(outputs, self.engine, sum(shares))
            if len(verdicts) == 1:
                verdicts[0].rows = rows  # one request's answer may have other rows than it
            self._judge(self.engine.check_outputs(inputs, table, rows), verdicts, "output")
        elif self.breaker is not None:
            for verdict in verdicts:
                self.breaker.record(verdict.counts_for_breaker)

    def _judge(self, results: list[RuleResult], verdicts: list[Verdict], side: str) -> None:
        """Count each rule once for the group, then give each request its part: the rules
        it broke that count for the breaker, and a refusal naming its own rows."""
        starts = None  # where each request's rows begin, once a rule is broken
        refused: dict[int, list[RuleResult]] = {}
        for result in results:
            rule = result.rule
            checked, violating = self._counters[rule.id]
            checked.inc(result.rows)
            if not result.violations:
                continue
            violating.inc(result.violations)
            if starts is None:
                starts = np.cumsum([0] + [verdict.rows for verdict in verdicts[:-1]])
            owners = np.searchsorted(starts, result.broken, side="right") - 1
            for index in np.unique(owners).tolist():
                verdict = verdicts[index]
                if rule.mode != "shadow" and rule.severity == self._breaker_severity:
                    verdict.counts_for_breaker = True
                own_rows = result.broken[owners == index] - starts[index]
                if rule.mode == "enforce":
                    refused.setdefault(index, []).append(RuleResult(rule, verdict.rows, own_rows))
                elif rule.mode == "warn":
                    logger.warning(
                        "guardrail %s (%s) broken by %d of %d rows, answered (warn)",
                        rule.id,
                        rule.severity,
                        len(own_rows),
                        verdict.rows,
                    )
        for index, verdict in enumerate(verdicts):
            broken = refused.get(index)
            if self.breaker is not None and (broken or side == "output"):
                self.breaker.record(verdict.counts_for_breaker)
            if broken:
                logger.info(
                    "request refused by guardrails: %s", ", ".join(r.rule.id for r in broken)
                )
                verdict.refusal = GuardrailViolationError(refusal_message(broken, side))

    def _on_breaker_change(self, now_open: bool) -> None:
        self._was_open = now_open
        readiness = self._readiness
        self._metrics.guardrail_breaker_open.set(int(now_open))
        if now_open:
            logger.error(
                "guardrail breaker open: %.0f%% of recent requests broke a %s rule",
                100 * (self.breaker.share if self.breaker else 0),
                self._breaker_severity,
            )
            self._ready_before_open = readiness.ready
            readiness.ready, readiness.reason = False, "guardrail breaker open"
            self._metrics.ready.set(0)
        else:
            logger.warning("guardrail breaker closed")
            if self._ready_before_open:
                readiness.ready, readiness.reason = True, "ready"
                self._metrics.ready.set(1)

    async def watch_breaker(self) -> None:
        """Keep readiness in step with the breaker while no request comes (an unready pod
        gets none): its cool-down ends on time, and an operator's reset (the ops listener's
        POST /guardrails/breaker/reset) closes it. Runs in each worker while it serves."""
        if self.breaker is None:
            return
        reset_seen = breaker_reset_stamp()
        while True:
            await asyncio.sleep(BREAKER_POLL_SECONDS)
            reset_asked = breaker_reset_stamp()
            if reset_asked != reset_seen:
                reset_seen = reset_asked
                logger.warning("guardrail breaker reset by an operator")
                self.breaker.reset()
            if self.breaker.is_open() != self._was_open:
                self._on_breaker_change(not self._was_open)


def _input_columns(data: Any) -> Columns | None:
    return data if isinstance(data, dict | pd.DataFrame) else None


def output_columns(outputs: Any, engine: RuleEngine, rows: int) -> tuple[Columns, int]:
    """The answer's fields the output rules read, as columns. A field the answer lacks is
    missing on every row (only `not_null` catches that)."""
    if isinstance(outputs, dict):
        fields = list(outputs.values())
        if fields and all(isinstance(f, list) and len(f) == len(fields[0]) for f in fields):
            return outputs, len(fields[0])  # an answer of columns
        records = [outputs]  # one row
    elif isinstance(outputs, list):
        records = outputs
    else:
        return {}, rows
    names = engine.output_fields
    # Gathering a field across the answer's rows; the checks on it are vectorised.
    columns = {
        name: [row.get(name) if isinstance(row, dict) else None for row in records]
        for name in names
    }
    return columns, len(records)


def refusal_message(refused: list[RuleResult], side: str) -> str:
    """What a 422 says of the enforced rules `refused` broke: rule, target and rows, never a
    value (the batch command gives each refused row the words its request alone gets)."""
    parts = []
    for result in refused[:MAX_RULES_NAMED]:
        rule = result.rule
        named = ", ".join(str(int(row)) for row in result.broken[:MAX_ROWS_NAMED])
        more = result.violations - MAX_ROWS_NAMED
        parts.append(
            f"rule '{rule.id}' ({rule.severity}) on {side} "
            f"'{rule.target_label}' at row{'s' if result.violations > 1 else ''} {named}"
            + (f" and {more} more" if more > 0 else "")
        )
    if len(refused) > MAX_RULES_NAMED:
        parts.append(f"and {len(refused) - MAX_RULES_NAMED} more rules")
    what = "the input" if side == "input" else "the model's answer"
    return f"{what} breaks business rules enforced for this model version: " + "; ".join(parts)
