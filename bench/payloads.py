"""Request bodies: demo applicants as MLflow `dataframe_records` JSON, and wide frames of
doubles for the overhead bench as `dataframe_split` JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from registry_scripts.demo_data import LABEL, make_credit_dataset

BODY_ROWS = (1, 100)
# The trivial model's width: the overhead bench's floor comparison and row sweep.
FLOOR_COLUMNS = 5
# Not the training seed (7): applicants the model has not seen.
SEED = 2024


def make_frame(rows: int) -> pd.DataFrame:
    """The first `rows` applicants of one fixed sample, without the label."""
    frame = make_credit_dataset(n_rows=max(BODY_ROWS), seed=SEED).drop(columns=[LABEL])
    return frame.head(rows)


def make_body(rows: int) -> bytes:
    # to_dict gives Python ints and floats, so JSON keeps 35 an integer and 85000.0 a float.
    return json.dumps({"dataframe_records": make_frame(rows).to_dict(orient="records")}).encode()


def make_wide_frame(columns: int, rows: int) -> pd.DataFrame:
    """`rows` rows of `columns` double columns x0, x1, ...; values with three decimals, so
    the JSON stays short (5,000 columns by 100 rows under the default body limit)."""
    values = np.random.default_rng(SEED).random((rows, columns)).round(3)
    return pd.DataFrame(values, columns=[f"x{index}" for index in range(columns)])


def make_split_body(frame: pd.DataFrame) -> bytes:
    """MLflow's `dataframe_split` JSON: column names once, then the rows as lists."""
    split = frame.to_dict(orient="split", index=False)
    return json.dumps({"dataframe_split": split}).encode()
