"""The demo model as the tests use it: the registry entry that holds it, and rows to score."""

from __future__ import annotations

from dataclasses import dataclass

from registry_scripts.demo_data import EXAMPLE_APPLICANT
from registry_scripts.train import MODEL_NAME

PRODUCTION_URI = f"models:/{MODEL_NAME}/Production"

VALID_ROW = EXAMPLE_APPLICANT
# An applicant the demo model scores high risk and declines.
RISKY_ROW = {
    **VALID_ROW,
    "income": 14000.0,
    "employment_status": "unemployed",
    "debt_to_income": 1.1,
    "num_late_payments": 6,
    "loan_amount": 40000.0,
    "credit_history_years": 0.5,
}


@dataclass(frozen=True)
class RegisteredDemo:
    """The demo model's version in a test registry, promoted to Production."""

    tracking_uri: str
    name: str
    version: str
    run_id: str
