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

from app.metrics import ServingMetrics

_EPSILON = 1e-4  # floor for empty bins, so the log in PSI stays finite


@dataclass
class _FeatureWindow:
    kind: str
    expected: np.ndarray[Any, Any]
    edges: np.ndarray[Any, Any] | None
    categories: dict[str, int] | None
    ring: np.ndarray[Any, Any]

    def bins(self, values: Any) -> np.ndarray[Any, Any]:
        if self.edges is not None:
            numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
            return np.searchsorted(self.edges, numbers, side="right")
        assert self.categories is not None
        other = len(self.categories)
        return np.fromiter(
            (self.categories.get(str(v), other) for v in values), dtype=np.int64, count=len(values)
        )


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
        publish_every_seconds: float = 1.0,
    ) -> None:
        self._metrics = metrics
        self._window = window_rows
        self._min_rows = min_rows
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
        rows = min(len(frame), self._window)
        if rows == 0:
            return
        frame = frame.iloc[-rows:]
        scores = self._scores(outputs, len(frame))
        with self._lock:
            slots = (self._position + np.arange(rows)) % self._window
            for name, window in self._features.items():
                if name in frame.columns:
                    window.ring[slots] = window.bins(frame[name].to_numpy())
            if self._score is not None and scores is not None:
                self._score.ring[slots] = self._score.bins(scores[-rows:])
            self._position = (self._position + rows) % self._window
            self._filled = min(self._filled + rows, self._window)
        now = time.monotonic()
        if now - self._last_publish >= self._publish_every:
            self._last_publish = now
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
    categories = {str(c): i for i, c in enumerate(spec["categories"])}
    return _FeatureWindow(
        "categorical",
        np.asarray(spec["expected"], dtype=float),
        None,
        categories,
        np.zeros(size, dtype=np.int64),
    )
