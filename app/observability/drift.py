"""Input and score drift against the training profile logged with the model.

Each worker keeps the bins of its most recent rows (a ring per feature, bounded) and
compares their distribution with the training proportions by the population stability
index (PSI: under 0.1 stable, 0.1-0.2 moderate, above 0.2 a real shift). The profile's
format is written down in model_wrapper/profile.py; a model without one has no drift.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.observability.metrics import ServingMetrics

_EPSILON = 1e-4  # floor for empty bins, so the log in PSI stays finite


@dataclass
class _FeatureWindow:
    kind: str
    expected: np.ndarray[Any, Any]
    edges: np.ndarray[Any, Any] | None
    categories: pd.Index | None
    ring: np.ndarray[Any, Any]

    def bins(self, values: pd.Series) -> np.ndarray[Any, Any]:
        """Vectorised: this runs on every predicted batch."""
        if self.edges is not None:
            numbers = values.to_numpy(dtype=float, na_value=np.nan)
            return np.searchsorted(self.edges, numbers, side="right")
        assert self.categories is not None
        positions = self.categories.get_indexer(pd.Index(values.to_numpy(dtype=object)))
        return np.where(positions < 0, len(self.categories), positions)


def psi(observed_bins: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> float:
    observed = np.bincount(observed_bins, minlength=len(expected))[: len(expected)]
    actual = np.maximum(observed / max(int(observed.sum()), 1), _EPSILON)
    baseline = np.maximum(expected, _EPSILON)
    return float(np.sum((actual - baseline) * np.log(actual / baseline)))


class DriftMonitor:
    """Thread-safe: rows are observed in the predict thread, read by /drift and metrics."""

    def __init__(
        self,
        profile: dict[str, Any],
        metrics: ServingMetrics,
        *,
        window_rows: int,
        min_rows: int,
        sample_interval_seconds: float,
        publish_every_seconds: float = 1.0,
    ) -> None:
        self._metrics = metrics
        self._window = window_rows
        self._min_rows = min_rows
        self._sample_interval = sample_interval_seconds
        self._last_sample = -float("inf")
        self._publish_every = publish_every_seconds
        self._lock = threading.Lock()
        self._position = 0
        self._filled = 0
        self._last_publish = 0.0
        self._features = {
            name: _window_for(spec, window_rows) for name, spec in profile["features"].items()
        }
        score = profile.get("score")
        self._score_column = score["column"] if score else None
        self._score = _window_for({"kind": "numeric", **score}, window_rows) if score else None

    def observe(self, frame: pd.DataFrame, outputs: Any) -> None:
        """Record a predicted batch, unless one was recorded less than an interval ago.

        Sampling batches by time bounds the cost under load (binning costs about a
        millisecond a batch) while a quiet server still records every request.
        """
        rows = min(len(frame), self._window)
        started = time.monotonic()
        if rows == 0 or started - self._last_sample < self._sample_interval:
            return
        self._last_sample = started
        scores = self._scores(outputs, len(frame))
        with self._lock:
            slots = (self._position + np.arange(rows)) % self._window
            for name, window in self._features.items():
                if name in frame.columns:
                    window.ring[slots] = window.bins(frame[name].iloc[-rows:])
            if self._score is not None and scores is not None:
                self._score.ring[slots] = self._score.bins(pd.Series(scores[-rows:]))
            self._position = (self._position + rows) % self._window
            self._filled = min(self._filled + rows, self._window)
        if started - self._last_publish >= self._publish_every:
            self._last_publish = started
            self.publish()

    def report(self) -> dict[str, Any]:
        with self._lock:
            filled = self._filled
            enough = filled >= self._min_rows
            features = {
                name: round(psi(w.ring[:filled], w.expected), 6) if enough else None
                for name, w in self._features.items()
            }
            score = (
                round(psi(self._score.ring[:filled], self._score.expected), 6)
                if enough and self._score is not None
                else None
            )
        return {
            "window_rows": filled,
            "window_capacity": self._window,
            "min_rows": self._min_rows,
            "features": features,
            "score": score,
        }

    def publish(self) -> None:
        report = self.report()
        for name, value in report["features"].items():
            if value is not None:
                self._metrics.feature_drift.labels(name).set(value)
        if report["score"] is not None:
            self._metrics.score_drift.set(report["score"])

    def _scores(self, outputs: Any, rows: int) -> list[float] | None:
        if self._score_column is None or not isinstance(outputs, list) or len(outputs) != rows:
            return None
        try:
            return [float(row[self._score_column]) for row in outputs]
        except (KeyError, TypeError, ValueError):
            return None


def _window_for(spec: dict[str, Any], size: int) -> _FeatureWindow:
    if spec["kind"] == "numeric":
        return _FeatureWindow(
            "numeric",
            np.asarray(spec["expected"], dtype=float),
            np.asarray(spec["edges"], dtype=float),
            None,
            np.zeros(size, dtype=np.int64),
        )
    categories = pd.Index([str(c) for c in spec["categories"]])
    return _FeatureWindow(
        "categorical",
        np.asarray(spec["expected"], dtype=float),
        None,
        categories,
        np.zeros(size, dtype=np.int64),
    )
