"""What the conformance run collected: both servers' answers per model, for the tests and
for the summary conftest.py prints at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON

    @property
    def error_code(self) -> str:
        return str(self.body.get("error_code", "")) if isinstance(self.body, dict) else ""


@dataclass
class ModelRun:
    answers: dict[str, tuple[Answer, Answer]]  # case -> (ours, MLflow's)
    ready_status: int  # our /readyz after start
    concurrent: list[tuple[Answer, Answer]]  # cross_row only: concurrent ours vs MLflow alone


RESULTS: dict[str, ModelRun] = {}


@dataclass(frozen=True)
class V2ModelRun:
    """One model of the V2 conformance run: the name in its URL, and per case (the model
    metadata included) our answer and MLServer's."""

    name: str
    answers: dict[str, tuple[Answer, Answer]]


V2_RESULTS: dict[str, V2ModelRun] = {}
