"""Live feature signals for Prometheus: what the served model is being asked, against what it was trained on.

Built from the model's reference profile (``reference_profile.json``: numeric features' quantile bins, categorical
features' category shares), for every request it gives
- ``model_feature_values_total{feature, bin}``: values per reference bin: ``below`` the training minimum, ``1`` to
  ``10`` (the training deciles, so each holds about a tenth of training values), ``above`` the maximum; for a
  category, the category itself, ``(other)`` for one the profile does not list;
- ``model_feature_drift{feature}``: the total variation distance (0: the same, 1: disjoint) between the recent
  requests' distribution over those bins and the training one. Recent means exponentially weighted, the weight
  of a row halving every ``HALF_LIFE_ROWS`` rows, so the gauge follows traffic without a window to store.
A model saved without a profile has no feature signals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from model_bundle.profile import category_shares, numeric_bins

HALF_LIFE_ROWS = 1000
BELOW, ABOVE, OTHER = "below", "above", "(other)"


class _Feature:
    def __init__(self, name: str, labels: list[str], reference: list[float], edges: np.ndarray | None = None):
        self.name = name
        self.labels = labels
        self.reference = np.asarray(reference, dtype="float64")
        self.edges = edges  # numeric features only
        self.positions = {label: position for position, label in enumerate(labels)}
        self.live = np.zeros(len(labels))

    def bins(self, values) -> np.ndarray:
        """The bin position of each present value (numpy rather than pandas: this runs for every request)."""
        values = np.asarray(values)
        if self.edges is not None:
            numbers = values.astype("float64")
            numbers = numbers[~np.isnan(numbers)]
            inside = np.searchsorted(self.edges[1:-1], numbers, side="right") + 1
            return np.where(
                numbers < self.edges[0], 0, np.where(numbers > self.edges[-1], len(self.labels) - 1, inside)
            )
        present = values[~pd.isna(values)]
        other = self.positions[OTHER]
        return np.fromiter((self.positions.get(str(value), other) for value in present), dtype=int, count=len(present))


class FeatureMonitor:
    def __init__(self, profile: Mapping, features: Sequence[Mapping[str, str]]):
        self.decay = 0.5 ** (1 / HALF_LIFE_ROWS)
        self.features: list[_Feature] = []
        for feature in features:
            name = feature["name"]
            if (bins := numeric_bins(profile, name)) is not None:
                edges, fractions = bins
                inner = [str(number) for number in range(1, len(edges))]
                self.features.append(_Feature(name, [BELOW, *inner, ABOVE], [0.0, *fractions, 0.0], edges))
            elif (categories := category_shares(profile, name)) is not None:
                shares, other = categories
                self.features.append(_Feature(name, [*shares, OTHER], [*shares.values(), other]))

    def observe(self, features: Mapping[str, Sequence] | pd.DataFrame) -> list[dict]:
        """The metric samples of one request's (coerced) feature rows, each ``{"key", "type", "value", "tags"}``
        (the model server adds them to its Prometheus metrics); updates the recent distributions."""
        metrics = []
        rows = len(features)
        for feature in self.features:
            counts = np.bincount(feature.bins(features[feature.name]), minlength=len(feature.labels))
            feature.live = feature.live * self.decay**rows + counts
            metrics += [
                {
                    "key": "model_feature_values",
                    "type": "COUNTER",
                    "value": int(count),
                    "tags": {"feature": feature.name, "bin": feature.labels[position]},
                }
                for position, count in enumerate(counts.tolist())
                if count
            ]
            total = feature.live.sum()
            if total > 0:
                distance = 0.5 * float(np.abs(feature.live / total - feature.reference).sum())
                metrics.append(
                    {
                        "key": "model_feature_drift",
                        "type": "GAUGE",
                        "value": distance,
                        "tags": {"feature": feature.name},
                    }
                )
        return metrics
