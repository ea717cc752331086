"""Constants and process helpers shared by the registry tests (fixtures live in conftest)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Small enough to train in about a second, good enough to clear TEST_FLOOR (AUC ~0.71),
# while the deliberately bad model (shuffled labels) scores ~0.5.
DEMO_TRAINING = {"n_rows": 3000, "n_estimators": 60}
TEST_FLOOR = "0.65"
