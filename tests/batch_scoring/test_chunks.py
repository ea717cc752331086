"""A chunk's answers meet the version's enforced output rules as the server's do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
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


class NegativeRefused(PythonModel):
    """Fails on any negative amount; answers a frame of scores, or a list when asked."""

    def __init__(self, as_list: bool) -> None:
        self.as_list = as_list

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> Any:
        amounts = model_input["amount"].astype(float)
        if (amounts < 0).any():
            raise ValueError("negative amount")
        if self.as_list:
            return (amounts * 2).tolist()
        return pd.DataFrame({"score": amounts / 1000, "label": ["x"] * len(amounts)})


@pytest.mark.parametrize("as_list", [False, True])
def test_a_refused_chunk_is_halved_until_each_refused_row_stands_alone(
    tmp_path: Path, as_list: bool
) -> None:
    path = tmp_path / "model"
    # No signature: what the model raises refuses the rows it was given.
    mlflow.pyfunc.save_model(path, python_model=NegativeRefused(as_list), pip_requirements=[])
    amounts = [1000.0, -1.0, 2000.0, 3000.0, -5.0, 4000.0, 5000.0]

    scored = ChunkScorer(load_served_model(str(path)), None).score(
        pd.DataFrame({"amount": amounts})
    )

    assert scored.scored_rows.tolist() == [0, 2, 3, 5, 6]
    assert sorted(scored.rejected) == [1, 4]
    assert len(set(scored.rejected.values())) == 1
    assert "no signature" in scored.rejected[1]
    if as_list:
        assert (scored.answers, scored.records) == (
            {"prediction": [2000.0, 4000.0, 6000.0, 8000.0, 10000.0]},
            False,
        )
    else:
        expected = {"score": [1.0, 2.0, 3.0, 4.0, 5.0], "label": ["x"] * 5}
        assert (scored.answers, scored.records) == (expected, True)
