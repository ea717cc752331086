"""One chunk of rows: refused rows set apart, the others predicted and their answers taken
as the server answers them.

The model input is built by the server's own FrameBuilder from the columns as the JSON
path holds them, so the model gets the frame /invocations gives it for the same rows;
predict is the server's (ServedModel.predict); each row's output is exactly what
/invocations answers in `predictions` for that row (batch_scoring.answers).

When MLflow refuses a chunk the refusers let through (a type they do not check, a model
without a signature), the chunk is halved until each refused row stands alone, so only
the refused rows are set apart, each with the reason the server gives. Answers that break
an enforced output rule of the version are set apart too, as the server refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from app.errors import ServingError
from app.guardrails.engine import RuleEngine
from app.protocol.frames import FrameBuilder
from app.runtime.input_refusal import input_refusal
from app.runtime.model import ServedModel
from batch_scoring.answers import (
    Columns,
    ModelFailedError,
    answer_columns,
    as_answered,
    frame_columns,
    joined_columns,
    records_of,
)
from batch_scoring.guardrails import enforces_output_rules, refuse_outputs
from batch_scoring.refusers import Positions, build_refusers, refused_rows, signature_columns


@dataclass
class ScoredChunk:
    scored_rows: Positions  # positions in the chunk, in order
    answers: Columns  # by column, one value per scored row (batch_scoring.answers)
    records: bool  # the model answers a record per row: `answers` holds its fields
    rejected: dict[int, str] = field(default_factory=dict)  # position -> reason


class ChunkScorer:
    def __init__(self, model: ServedModel, engine: RuleEngine | None) -> None:
        self.model = model
        self.refusers = build_refusers(model, engine)
        self.output_rules = engine if enforces_output_rules(engine) else None
        self.to_frame = FrameBuilder(model.input_schema)
        self._unchecked = model.input_schema is None

    def score(self, frame: pd.DataFrame) -> ScoredChunk:
        columns = signature_columns(frame, self.model.input_schema)
        rejected = refused_rows(self.refusers, frame, columns)
        accepted = np.setdiff1d(np.arange(len(frame)), list(rejected), assume_unique=True)
        scored = self._answer(columns, accepted, rejected)
        if self.output_rules is not None and len(scored.scored_rows):
            self._refuse_answers(columns, scored)
        return scored

    def _answer(
        self, columns: dict[str, Any], accepted: Positions, rejected: dict[int, str]
    ) -> ScoredChunk:
        """The accepted rows' answers: in one predict call, or, when it is refused, in
        halves until each refused row stands alone."""
        pieces: list[tuple[Positions, list[Any] | Columns]] = []
        if len(accepted):
            self._predict(columns, accepted, pieces, rejected)
        # Accepted positions are sorted and the halves taken in order: so are the pieces'.
        scored = np.concatenate([accepted[:0], *(rows for rows, _ in pieces)])
        by_column = [(len(rows), answers) for rows, answers in pieces if isinstance(answers, dict)]
        if by_column and len(by_column) == len(pieces):
            return ScoredChunk(scored, joined_columns(by_column), True, rejected)
        each_row = [
            row
            for rows, answers in pieces
            for row in (records_of(answers, len(rows)) if isinstance(answers, dict) else answers)
        ]
        return ScoredChunk(scored, *answer_columns(each_row), rejected)

    def _predict(
        self,
        columns: dict[str, Any],
        rows: Positions,
        pieces: list[tuple[Positions, list[Any] | Columns]],
        rejected: dict[int, str],
    ) -> None:
        """Add the rows and their answers to `pieces`; when predict refuses them, their
        halves', until each refused row stands alone in `rejected` with the reason."""
        try:
            pieces.append((rows, self._answers(columns, rows)))
        except ServingError as refusal:
            if len(rows) == 1:
                rejected[int(rows[0])] = refusal.message
                return
            middle = len(rows) // 2
            self._predict(columns, rows[:middle], pieces, rejected)
            self._predict(columns, rows[middle:], pieces, rejected)

    def _refuse_answers(self, columns: dict[str, Any], scored: ScoredChunk) -> None:
        """Rows whose answer breaks an enforced output rule leave the scores for the
        rejects, as the server refuses such an answer (422)."""
        assert self.output_rules is not None
        answered = scored.scored_rows
        inputs = {name: values[answered] for name, values in columns.items()}
        keep = np.ones(len(answered), dtype=np.bool_)
        for mask, reason in refuse_outputs(
            self.output_rules, inputs, scored.answers, scored.records, len(answered)
        ):
            for position in answered[mask].tolist():
                scored.rejected[position] = reason
            keep &= ~mask
        if not keep.all():
            scored.scored_rows = answered[keep]
            scored.answers = {
                name: list(compress(values, keep)) for name, values in scored.answers.items()
            }

    def _answers(self, columns: dict[str, Any], rows: Positions) -> list[Any] | Columns:
        """The rows' answers, a list or (a frame converted directly) by column; the
        ServingError the server answers when it refuses them."""
        # The frame builder refuses (SchemaMismatchError) what MLflow's cast would.
        data = self.to_frame({name: values[rows].tolist() for name, values in columns.items()})
        try:
            predictions = self.model.predict(data)
        except Exception as error:
            refusal = input_refusal(error, unchecked=self._unchecked)
            if refusal is None:
                raise ModelFailedError(
                    f"the model failed on {len(rows)} rows: {type(error).__name__}"
                ) from error
            raise refusal from None
        if isinstance(predictions, pd.DataFrame) and len(predictions) == len(rows):
            by_column = frame_columns(predictions)
            if by_column is not None:
                return by_column
        answers = as_answered(predictions)
        if not isinstance(answers, list) or len(answers) != len(rows):
            count = len(answers) if isinstance(answers, list) else 1
            raise ModelFailedError(
                f"the model answered {count} predictions for {len(rows)} rows; batch scoring "
                "needs one prediction per row"
            )
        return answers
