"""The rules file: its format, parsed and validated into typed rules.

    version: 1
    rules:
      - id: age-range
        column: age                      # an input column ...
        min: 18
        max: 100
        severity: critical               # critical | major | minor
        mode: enforce                    # enforce | warn | shadow
      - id: score-bounds
        output: score                    # ... or an output field
        min: 0
        max: 1
        severity: critical
        mode: enforce
      - id: high-score-needs-review      # if `when` holds, `then` must
        when: {output: score, gt: 0.8}
        then: {output: decision, in: [manual_review, decline]}
        severity: major
        mode: warn
      - id: loan-below-income            # one column against another
        compare: {left: loan_amount, op: le, right: income}
        severity: minor
        mode: shadow
    breaker: {max_violation_share: 0.2, window_seconds: 60, min_requests: 20}

A check holds a target (`column` or `output`) and constraints: `min`/`max` (inclusive),
`gt`/`lt` (exclusive), `in` (allowed values), `not_null`. A missing value breaks only
`not_null`. Unknown keys, wrong types and unknown columns are refused, naming the rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Severity = Literal["critical", "major", "minor"]
Mode = Literal["enforce", "warn", "shadow"]
Operator = Literal["lt", "le", "gt", "ge", "eq", "ne"]
Scalar = bool | int | float | str
# Rule ids become metric labels and log words: short, plain, never free text.
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Kinds of column a constraint applies to, from the signature's types.
NUMERIC, TEXT, BOOLEAN, OTHER = "numeric", "text", "boolean", "other"
_KINDS = {
    "long": NUMERIC,
    "integer": NUMERIC,
    "double": NUMERIC,
    "float": NUMERIC,
    "string": TEXT,
    "boolean": BOOLEAN,
}
INPUT, OUTPUT = "input", "output"
MAX_ALLOWED_VALUES = 1000


class GuardrailsError(ValueError):
    """A rules file that cannot be used: malformed, or not fitting the model's signature."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Target(_Strict):
    """One input column or one output field."""

    column: str | None = None
    output: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if (self.column is None) == (self.output is None):
            raise ValueError("name exactly one of 'column' (input) or 'output' (output field)")
        return self

    @property
    def side(self) -> str:
        return INPUT if self.column is not None else OUTPUT

    @property
    def name(self) -> str:
        return self.column if self.column is not None else str(self.output)

    def describe(self) -> str:
        return f"{self.side} {'column' if self.side == INPUT else 'field'} '{self.name}'"


class Check(Target):
    """A target and the constraints each of its values must meet."""

    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    allowed: list[Scalar] | None = Field(None, alias="in", max_length=MAX_ALLOWED_VALUES)
    not_null: bool = False

    @model_validator(mode="after")
    def _some_constraint(self) -> Check:
        bounds = (self.min, self.max, self.gt, self.lt)
        if all(bound is None for bound in bounds) and self.allowed is None and not self.not_null:
            raise ValueError("give at least one of min, max, gt, lt, in, not_null")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    @property
    def numeric(self) -> bool:
        return any(bound is not None for bound in (self.min, self.max, self.gt, self.lt))


class Comparison(_Strict):
    """`left op right`, two input columns or two output fields (named as `side.name`, or a
    bare name for an input column)."""

    left: str
    op: Operator
    right: str

    def targets(self) -> tuple[Target, Target]:
        return _target_of(self.left), _target_of(self.right)


def _target_of(reference: str) -> Target:
    side, dot, name = reference.partition(".")
    if dot and side == OUTPUT:
        return Target(output=name)
    if dot and side == INPUT:
        return Target(column=name)
    return Target(column=reference)


class Rule(_Strict):
    """One rule: a check, a conditional (`when` holds, so `then` must), or a comparison."""

    id: RuleId
    severity: Severity
    mode: Mode
    description: str | None = Field(None, max_length=500)
    column: str | None = None
    output: str | None = None
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    allowed: list[Scalar] | None = Field(None, alias="in", max_length=MAX_ALLOWED_VALUES)
    not_null: bool | None = None
    when: Check | None = None
    then: Check | None = None
    compare: Comparison | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Rule:
        simple = any(
            value is not None
            for value in (self.column, self.output, self.min, self.max, self.gt, self.lt)
        ) or (self.allowed is not None or self.not_null is not None)
        conditional = self.when is not None or self.then is not None
        shapes = [simple, conditional, self.compare is not None]
        if sum(shapes) != 1:
            raise ValueError(
                "a rule is one of: a check (column or output with min/max/gt/lt/in/not_null), "
                "a conditional (when + then), or a comparison (compare)"
            )
        if conditional and (self.when is None or self.then is None):
            raise ValueError("a conditional rule needs both 'when' and 'then'")
        if simple:
            try:
                self.check  # noqa: B018 (built to be validated: a target and a constraint)
            except ValidationError as error:
                messages = (_message(detail["msg"]) for detail in error.errors(include_url=False))
                raise ValueError("; ".join(messages)) from None
        return self

    @property
    def check(self) -> Check | None:
        """The rule as a single check, when it is one."""
        if self.when is not None or self.compare is not None:
            return None
        return Check.model_validate(
            {
                "column": self.column,
                "output": self.output,
                "min": self.min,
                "max": self.max,
                "gt": self.gt,
                "lt": self.lt,
                "in": self.allowed,
                "not_null": bool(self.not_null),
            }
        )

    def targets(self) -> list[Target]:
        if self.compare is not None:
            return list(self.compare.targets())
        if self.when is not None and self.then is not None:
            return [self.when, self.then]
        check = self.check
        assert check is not None
        return [check]

    @property
    def side(self) -> str:
        """`output` when the rule reads an output field (checked after predict), else `input`."""
        return OUTPUT if any(t.side == OUTPUT for t in self.targets()) else INPUT

    @property
    def target_label(self) -> str:
        """What the metrics and messages name: the targets, joined."""
        return ",".join(dict.fromkeys(t.name for t in self.targets()))


class BreakerConfig(_Strict):
    """Stop scoring when too many recent requests broke a rule of `rule_severity`."""

    rule_severity: Severity = "critical"
    max_violation_share: float = Field(gt=0, le=1)
    window_seconds: float = Field(60, gt=0, le=3600)
    min_requests: int = Field(20, ge=1)
    open_seconds: float | None = Field(
        None, gt=0, le=3600, description="How long it stays open (default: window_seconds)."
    )


class RulesFile(_Strict):
    version: Literal[1]
    rules: list[Rule] = Field(min_length=1)
    breaker: BreakerConfig | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id '{rule.id}' is used twice")
            seen.add(rule.id)
        return self


@dataclass(frozen=True)
class Guardrails:
    """A parsed rules file with the text it came from (and that text's sha256)."""

    rules_file: RulesFile
    text: str

    @property
    def rules(self) -> list[Rule]:
        return self.rules_file.rules

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def describe(self) -> list[dict[str, object]]:
        """The rules as GET /guardrails lists them."""
        return [
            rule.model_dump(mode="json", by_alias=True, exclude_none=True) for rule in self.rules
        ]


def parse_rules(text: str) -> Guardrails:
    """Parse YAML text into rules; GuardrailsError names every problem and its rule."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise GuardrailsError(f"the rules file is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise GuardrailsError("the rules file must be a mapping with 'version' and 'rules'")
    try:
        rules_file = RulesFile.model_validate(document)
    except ValidationError as error:
        raise GuardrailsError(_explain(error, document)) from None
    return Guardrails(rules_file, text)


def _explain(error: ValidationError, document: Mapping[str, object]) -> str:
    problems = []
    rules = document.get("rules")
    for detail in error.errors(include_url=False, include_input=False):
        location = list(detail["loc"])
        where = "the rules file"
        if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
            index = location[1]
            rule = rules[index] if isinstance(rules, list) and index < len(rules) else None
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            where = f"rule '{rule_id}'" if rule_id else f"rule #{index + 1}"
            location = location[2:]
        field = ".".join(str(part) for part in location if not str(part).startswith("function"))
        problems.append(f"{where}{f' field {field!r}' if field else ''}: {_message(detail['msg'])}")
    return "; ".join(problems)


def _message(pydantic_message: str) -> str:
    """Pydantic's message without the "Value error, " it puts before a validator's own."""
    return pydantic_message.replace("Value error, ", "")


@dataclass(frozen=True)
class Fields:
    """What rules may name: input columns and output fields with their kinds. `None` for a
    side the model does not declare (no output schema): its names are not checked."""

    inputs: Mapping[str, str] | None
    outputs: Mapping[str, str] | None


def fields_of_signature(signature: Mapping[str, object] | None) -> Fields:
    """What rules may name, from a signature as MLflow writes it (`ModelSignature.to_dict()`:
    the inputs and outputs as JSON lists of columns); tensors have no columns to name."""
    signature = signature or {}
    return Fields(_columns(signature.get("inputs")), _columns(signature.get("outputs")))


def _columns(schema_json: object) -> dict[str, str] | None:
    """None when the side is not declared; empty when it is but names no column (a tensor,
    an unnamed column): then no rule can name one."""
    if not isinstance(schema_json, str):
        return None
    return {
        str(spec["name"]): _KINDS.get(str(spec.get("type")), OTHER)
        for spec in json.loads(schema_json)
        if isinstance(spec, dict) and spec.get("name") and spec.get("type") != "tensor"
    }


def check_fits(guardrails: Guardrails, fields: Fields) -> None:
    """Refuse rules naming a column the signature lacks, or a constraint of the wrong type."""
    problems = [
        f"rule '{rule.id}': {problem}"
        for rule in guardrails.rules
        for problem in _misfits(rule, fields)
    ]
    if problems:
        raise GuardrailsError("; ".join(problems))


def _misfits(rule: Rule, fields: Fields) -> Iterator[str]:
    kinds: set[str] = set()
    for target in rule.targets():
        declared = fields.inputs if target.side == INPUT else fields.outputs
        if declared is None:
            if target.side == INPUT:
                yield "the model has no signature, so it has no input columns to check"
            continue
        if target.name not in declared:
            yield f"{target.describe()} is not in the model's signature"
            continue
        kind = declared[target.name]
        kinds.add(kind)
        if isinstance(target, Check):
            yield from _type_misfits(target, kind)
    if rule.compare is not None and rule.compare.op not in ("eq", "ne") and kinds - {NUMERIC}:
        yield f"'{rule.compare.op}' compares numbers; a compared column is not numeric"


def _type_misfits(check: Check, kind: str) -> Iterator[str]:
    if check.numeric and kind != NUMERIC:
        yield f"min/max/gt/lt need a numeric column; {check.describe()} is {kind}"
    if check.allowed is None:
        return
    if kind == OTHER:
        yield f"'in' needs a text, numeric or boolean column; {check.describe()} is not one"
        return
    for value in check.allowed:
        if kind == TEXT and not isinstance(value, str):
            yield f"'in' lists a non-text value for text {check.describe()}"
            return
        if kind == NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
            yield f"'in' lists a non-number for numeric {check.describe()}"
            return
        if kind == BOOLEAN and not isinstance(value, bool):
            yield f"'in' lists a non-boolean for boolean {check.describe()}"
            return
