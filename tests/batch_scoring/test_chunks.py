"""A chunk's answers meet the version's enforced output rules as the server's do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from app.guardrails.engine import RuleEngine
from app.guardrails.rules import parse_rules
from app.runtime.guardrails import output_columns
from app.runtime.model import load_served_model
from batch_scoring.chunks import ChunkScorer

INPUT = pd.DataFrame({"amount": [500.0, 2500.0, 900.0]})

SCORE_REQUIRED = """\
version: 1
rules:
  - id: score-present
    output: score
    not_null: true
    severity: critical
    mode: enforce
"""


class EmptyRecords(PythonModel):
    """Answers a record without any field for each row."""

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> list[dict[str, Any]]:
        return [{} for _ in range(len(model_input))]


def test_records_without_fields_break_a_not_null_output_rule_as_on_the_server(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model"
    mlflow.pyfunc.save_model(
        path, python_model=EmptyRecords(), signature=infer_signature(INPUT), pip_requirements=[]
    )
    model = load_served_model(str(path))
    engine = RuleEngine(parse_rules(SCORE_REQUIRED))
    server_answer: list[dict[str, Any]] = [{} for _ in range(len(INPUT))]
    server_table, server_rows = output_columns(server_answer, engine, len(INPUT))
    refused_by_server = engine.check_outputs({}, server_table, server_rows)[0].broken.tolist()
    assert refused_by_server == [0, 1, 2]

    scored = ChunkScorer(model, engine).score(INPUT)

    assert scored.scored_rows.tolist() == []
    assert sorted(scored.rejected) == refused_by_server
    assert all("score-present" in reason for reason in scored.rejected.values())
