"""A deterministic synthetic credit-risk dataset for the demo model and the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

LABEL = "defaulted"
# One applicant as a client sends it, for examples, tests and the benches.
EXAMPLE_APPLICANT: dict[str, object] = {
    "age": 35,
    "income": 85000.0,
    "employment_status": "employed",
    "num_credit_cards": 2,
    "credit_history_years": 8.5,
    "debt_to_income": 0.31,
    "num_late_payments": 0,
    "loan_amount": 12000.0,
    "home_ownership": "rent",
}
EMPLOYMENT_STATUSES = ("employed", "self_employed", "unemployed", "retired", "student")
HOME_OWNERSHIP = ("own", "mortgage", "rent")
CATEGORICAL_FEATURES = ("employment_status", "home_ownership")
NUMERIC_FEATURES = (
    "age",
    "income",
    "num_credit_cards",
    "credit_history_years",
    "debt_to_income",
    "num_late_payments",
    "loan_amount",
)


def make_credit_dataset(n_rows: int = 6000, seed: int = 7) -> pd.DataFrame:
    """Applicants with a `defaulted` label drawn from a known logistic risk model.

    The same `n_rows` and `seed` always give the same frame.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 76, n_rows)
    employment = rng.choice(EMPLOYMENT_STATUSES, n_rows, p=[0.62, 0.14, 0.08, 0.1, 0.06])
    income = np.round(rng.lognormal(mean=10.9, sigma=0.5, size=n_rows), 2)
    income = np.where(employment == "unemployed", np.round(income * 0.25, 2), income)
    history = np.round(np.minimum(rng.gamma(2.0, 5.0, n_rows), age - 18), 1)
    cards = rng.poisson(2.5, n_rows)
    late = rng.poisson(0.6, n_rows)
    debt_to_income = np.round(np.clip(rng.normal(0.35, 0.18, n_rows), 0.0, 1.5), 3)
    loan = np.round(rng.lognormal(mean=9.6, sigma=0.7, size=n_rows), 2)
    home = rng.choice(HOME_OWNERSHIP, n_rows, p=[0.25, 0.4, 0.35])

    logit = (
        -1.2
        + 3.2 * (debt_to_income - 0.35)
        + 0.55 * late
        - 0.045 * history
        - 0.9 * (np.log(income) - 10.9)
        + 0.35 * (loan / income)
        + 0.08 * np.maximum(cards - 4, 0)
        - 0.012 * (age - 40)
        + np.select(
            [employment == "unemployed", employment == "student", employment == "self_employed"],
            [1.3, 0.6, 0.25],
            0.0,
        )
        + np.where(home == "own", -0.3, 0.0)
    )
    defaulted = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "age": age.astype(np.int64),
            "income": income,
            "employment_status": employment,
            "num_credit_cards": cards.astype(np.int64),
            "credit_history_years": history,
            "debt_to_income": debt_to_income,
            "num_late_payments": late.astype(np.int64),
            "loan_amount": loan,
            "home_ownership": home,
            LABEL: defaulted,
        }
    )
