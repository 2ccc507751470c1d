"""The model server's Prometheus metrics: the series it exports and what each request adds to them
(``ModelSignals``). Served on the metrics port (any path, e.g. /prometheus) and at /metrics on the HTTP port.

Each series is labelled ``model_name``:
- ``model_requests_total{outcome="ok"|"error", reason}``: inference requests (reason: the codes of
  serving.model_server's table of errors, "" if ok);
- ``model_prediction_rows_total``: rows predicted;
- ``model_prediction_seconds``: histogram of the time per request (checks, prediction and signals);
- ``model_predict_calls_total``: calls of the model's predict; for tree models, requests that arrive while one
  is predicted are predicted together, with the very same results (see ``BundleModel._run``);
- ``model_missing_values_total{feature}``: missing input values, per feature;
- ``model_predicted_class_total{class}``: predicted labels (classifiers);
- ``model_predicted_value_total{bucket}``: predictions per range of the training target's deciles (regressors);
- ``model_feature_values_total{feature, bin}`` and ``model_feature_drift{feature}``: the requests' values per
  training decile or category, and how far their recent distribution is from training (see feature_monitor).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

import model_bundle
from serving.feature_monitor import FeatureMonitor

disable_created_metrics()  # the *_created series only double what a scrape shows
LABEL = "model_name"
REQUESTS = Counter("model_requests", "Inference requests, by outcome and reason", [LABEL, "outcome", "reason"])
ROWS = Counter("model_prediction_rows", "Rows predicted", [LABEL])
# Calls of the model's predict: fewer than requests when concurrent requests are predicted together.
CALLS = Counter("model_predict_calls", "Calls of the model's predict (concurrent requests may share one)", [LABEL])
SECONDS = Histogram(
    "model_prediction_seconds",
    "Time per inference request in the model (checks, prediction, signals)",
    [LABEL],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MISSING = Counter("model_missing_values", "Missing input values, per feature", [LABEL, "feature"])
CLASSES = Counter("model_predicted_class", "Predicted labels", [LABEL, "class"])
VALUES = Counter("model_predicted_value", "Predictions per range of training-target deciles", [LABEL, "bucket"])
FEATURE_VALUES = Counter(
    "model_feature_values", "Request values per training decile or category", [LABEL, "feature", "bin"]
)
DRIFT = Gauge("model_feature_drift", "Distance of recent requests from training, 0 to 1", [LABEL, "feature"])


def count_error(model_name: str, reason: str) -> None:
    REQUESTS.labels(model_name, "error", reason).inc()


def count_ok(model_name: str, rows: int, started: float) -> None:
    """A request answered: ``rows`` predicted since ``started`` (a ``time.perf_counter()`` reading)."""
    REQUESTS.labels(model_name, "ok", "").inc()
    ROWS.labels(model_name).inc(rows)
    SECONDS.labels(model_name).observe(time.perf_counter() - started)


def count_predict_call(model_name: str) -> None:
    CALLS.labels(model_name).inc()


class ModelSignals:
    """What the predicted rows of one loaded bundle add to the series: missing values, predicted classes or value
    buckets, and the feature monitor's bins and drift. Used by one thread only (the server's predict worker): the
    feature monitor's state is not shared."""

    def __init__(self, model_name: str, bundle: model_bundle.Bundle):
        self.model_name = model_name
        self.classifier = bundle.task == model_bundle.CLASSIFICATION
        profile = bundle.documents.get(model_bundle.PROFILE_FILE)
        self.monitor = FeatureMonitor(profile, bundle.features) if profile else None
        edges = bundle.card.prediction_buckets
        self.bucket_edges = np.asarray(edges, dtype="float64") if edges else None
        self.bucket_labels = bucket_labels(edges) if edges else []

    def record(self, features: pd.DataFrame, predictions: np.ndarray) -> None:
        name = self.model_name
        columns = {feature: features[feature].to_numpy() for feature in features.columns}
        for feature, values in columns.items():
            if count := int(pd.isna(values).sum()):
                MISSING.labels(name, feature).inc(count)
        if self.classifier:
            labels, counts = np.unique(predictions.astype(str), return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                CLASSES.labels(name, label).inc(count)
        elif self.bucket_edges is not None:
            buckets, counts = np.unique(
                np.searchsorted(self.bucket_edges, predictions, side="right"), return_counts=True
            )
            for bucket, count in zip(buckets.tolist(), counts.tolist(), strict=True):
                VALUES.labels(name, self.bucket_labels[bucket]).inc(count)
        if self.monitor is not None:
            for signal in self.monitor.observe(columns):
                tags = signal["tags"]
                if signal["key"] == "model_feature_values":
                    FEATURE_VALUES.labels(name, tags["feature"], tags["bin"]).inc(signal["value"])
                else:
                    DRIFT.labels(name, tags["feature"]).set(signal["value"])


def bucket_labels(edges: list[float]) -> list[str]:
    """Readable names of the ranges between ``edges``: "<e0", "e0-e1", ..., ">=eN"."""
    shown = [f"{edge:.6g}" for edge in edges]
    return [f"<{shown[0]}"] + [f"{low}-{high}" for low, high in itertools.pairwise(shown)] + [f">={shown[-1]}"]
