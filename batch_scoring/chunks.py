"""One chunk of rows: refused rows set apart, the others predicted and encoded as the
server answers them.

The model input is built by the server's own FrameBuilder from the columns as the JSON
path holds them, so the model gets the frame /invocations gives it for the same rows;
predict is the server's (ServedModel.predict); the output is encoded by the server's
encoder and decoded again, so each row's output is exactly what /invocations answers in
`predictions` for that row (NaN as null, numpy values as JSON numbers, ...).

When MLflow refuses a chunk the refusers let through (a type they do not check, a model
without a signature), the chunk is halved until each refused row stands alone, so only
the refused rows are set apart, each with the reason the server gives. Answers that break
an enforced output rule of the version are set apart too, as the server refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from app.errors import ServingError
from app.guardrails.engine import RuleEngine
from app.protocol.encoding import encode_predictions, to_jsonable
from app.protocol.frames import FrameBuilder
from app.runtime.input_refusal import input_refusal
from app.runtime.model import ServedModel
from batch_scoring.guardrails import enforces_output_rules, refuse_outputs
from batch_scoring.refusers import Positions, build_refusers, signature_columns


class ModelFailedError(Exception):
    """The model failed on rows it did not refuse, or answered other than one value per
    row: the run stops, as the server would answer 500."""


@dataclass
class ScoredChunk:
    scored_rows: Positions  # positions in the chunk, in order
    predictions: list[Any]  # one per scored row: the decoded /invocations answer
    rejected: dict[int, str] = field(default_factory=dict)  # position -> reason


class ChunkScorer:
    def __init__(self, model: ServedModel, engine: RuleEngine | None) -> None:
        self.model = model
        self.refusers = build_refusers(model, engine)
        self.output_rules = engine if enforces_output_rules(engine) else None
        self.to_frame = FrameBuilder(model.input_schema)
        self._unchecked = model.input_schema is None

    def score(self, frame: pd.DataFrame) -> ScoredChunk:
        rejected: dict[int, str] = {}
        for refuser in self.refusers:
            for mask, reason in refuser(frame):
                for position in np.flatnonzero(mask).tolist():
                    rejected.setdefault(position, reason)
        accepted = np.setdiff1d(np.arange(len(frame)), list(rejected), assume_unique=True)
        columns = signature_columns(frame, self.model.input_schema)
        outputs: dict[int, Any] = {}
        if len(accepted):
            self._predict(columns, accepted, outputs, rejected)
        if self.output_rules is not None and outputs:
            self._refuse_answers(columns, outputs, rejected)
        scored = np.array(sorted(outputs), dtype=np.intp)
        return ScoredChunk(scored, [outputs[int(row)] for row in scored], rejected)

    def _predict(
        self,
        columns: dict[str, Any],
        rows: Positions,
        outputs: dict[int, Any],
        rejected: dict[int, str],
    ) -> None:
        try:
            answers = self._answers(columns, rows)
        except ServingError as refusal:
            if len(rows) == 1:
                rejected[int(rows[0])] = refusal.message
                return
            middle = len(rows) // 2
            self._predict(columns, rows[:middle], outputs, rejected)
            self._predict(columns, rows[middle:], outputs, rejected)
            return
        outputs.update(zip(rows.tolist(), answers, strict=True))

    def _refuse_answers(
        self, columns: dict[str, Any], outputs: dict[int, Any], rejected: dict[int, str]
    ) -> None:
        """Rows whose answer breaks an enforced output rule leave the scores for the
        rejects, as the server refuses such an answer (422)."""
        assert self.output_rules is not None
        answered = np.array(sorted(outputs), dtype=np.intp)
        inputs = {name: values[answered] for name, values in columns.items()}
        answers = [outputs[int(row)] for row in answered]
        for mask, reason in refuse_outputs(self.output_rules, inputs, answers):
            for position in answered[mask].tolist():
                rejected[position] = reason
                del outputs[position]

    def _answers(self, columns: dict[str, Any], rows: Positions) -> list[Any]:
        """The rows' answers; the ServingError the server answers when it refuses them."""
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
        answers = _as_answered(predictions)
        if not isinstance(answers, list) or len(answers) != len(rows):
            count = len(answers) if isinstance(answers, list) else 1
            raise ModelFailedError(
                f"the model answered {count} predictions for {len(rows)} rows; batch scoring "
                "needs one prediction per row"
            )
        return answers


def _as_answered(predictions: Any) -> Any:
    """What /invocations answers in `predictions`, as a client decodes it."""
    try:
        body = encode_predictions(to_jsonable(predictions))
    except TypeError as error:  # orjson's JSONEncodeError: the server answers 500 too
        raise ModelFailedError(f"the model's output cannot be encoded as JSON: {error}") from None
    return orjson.loads(body)["predictions"]
