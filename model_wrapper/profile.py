"""A per-feature summary of the training data, logged with the model for drift monitoring.

Format (stored in the MLmodel file's `metadata["training_profile"]`, read by the server):

    {"rows": N,
     "features": {"age": {"kind": "numeric", "edges": [...], "expected": [...],
                          "min": 21.0, "max": 75.0},
                  "home_ownership": {"kind": "categorical", "categories": [...],
                                     "expected": [...]}},
     "score": {"column": "score", "edges": [...], "expected": [...]}}

Numeric values fall in bin `searchsorted(edges, value, side="right")`; categorical values
in the index of their category, unknown ones in a last "other" bin. `expected` holds the
training proportions of each bin; `min` and `max` (profiles logged since business rules
exist) are the observed range, from which `registry_scripts.guardrails propose` drafts rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_BINS = 10
MAX_CATEGORIES = 20


def numeric_bins(values: np.ndarray[Any, Any], edges: Sequence[float]) -> np.ndarray[Any, Any]:
    return np.searchsorted(np.asarray(edges, dtype=float), values.astype(float), side="right")


def proportions(bins: np.ndarray[Any, Any], n_bins: int) -> list[float]:
    counts = np.bincount(bins, minlength=n_bins)[:n_bins]
    return [float(c) for c in counts / max(int(counts.sum()), 1)]


def numeric_profile(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    edges = sorted({float(q) for q in np.quantile(finite, quantiles)})
    return {
        "kind": "numeric",
        "edges": edges,
        "expected": proportions(numeric_bins(finite, edges), len(edges) + 1),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    counts = values.astype(str).value_counts()
    categories = [str(c) for c in counts.index[:MAX_CATEGORIES]]
    total = int(counts.sum())
    expected = [int(counts[c]) / total for c in categories]
    return {
        "kind": "categorical",
        "categories": categories,
        "expected": [*expected, max(0.0, 1.0 - sum(expected))],
    }


def build_training_profile(
    features: pd.DataFrame, scores: np.ndarray[Any, Any], score_column: str = "score"
) -> dict[str, Any]:
    profile: dict[str, Any] = {"rows": len(features), "features": {}}
    for column in features.columns:
        series = features[column]
        if series.dtype.kind in "iuf":
            profile["features"][str(column)] = numeric_profile(series.to_numpy(dtype=float))
        else:
            profile["features"][str(column)] = categorical_profile(series)
    profile["score"] = {"column": score_column, **numeric_profile(np.asarray(scores, dtype=float))}
    for key in ("kind", "min", "max"):
        del profile["score"][key]
    return profile
