"""Request bodies: demo applicants as MLflow `dataframe_records` JSON."""

from __future__ import annotations

import json

import pandas as pd

from registry_scripts.demo_data import LABEL, make_credit_dataset

BODY_ROWS = (1, 100)
# Not the training seed (7): applicants the model has not seen.
SEED = 2024


def make_frame(rows: int) -> pd.DataFrame:
    """The first `rows` applicants of one fixed sample, without the label."""
    frame = make_credit_dataset(n_rows=max(BODY_ROWS), seed=SEED).drop(columns=[LABEL])
    return frame.head(rows)


def make_body(rows: int) -> bytes:
    # to_dict gives Python ints and floats, so JSON keeps 35 an integer and 85000.0 a float.
    return json.dumps({"dataframe_records": make_frame(rows).to_dict(orient="records")}).encode()
