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
  training decile or category, and how far their recent distribution is from training (see feature_monitor);
- per group of the sensitive columns the model card lists (``sensitive_groups``, written by train_model from its
  ``sensitive_columns``), the label ``column`` naming the column and ``group`` the group:
  - ``model_group_predictions_total{column, group}``: rows predicted;
  - ``model_group_predicted_class_total{column, group, class}`` (classifiers): predicted labels. The selection rate
    of a class in a group is ``rate(...predicted_class_total{class=c})`` / ``rate(...predictions_total)`` of the
    group (cluster/monitoring: the dashboard's panel and the ModelFairnessGap alert);
  - ``model_group_prediction_sum_total{column, group, sign}`` (regressors): the sum of the predictions, positive
    ones under ``sign="positive"``, negative ones negated under ``sign="negative"`` (a counter never decreases, as
    Prometheus recommends for sums of signed values); the mean prediction of a group is
    (increase of positive - increase of negative) / increase of ``model_group_predictions_total``.
  A row's group is the value of the column in the request (a feature, or an excluded column the client sends
  beside them) named by model_bundle.group_name: one of the card's groups (at most MAX_SENSITIVE_GROUPS, the most
  frequent in training), else ``(other)``; ``(missing)`` for a missing value; ``(not sent)`` when the request lacks
  the (excluded) column. So each column has at most 13 groups. Every group's series exist from the start, at 0 (a
  class never predicted for a group has a selection rate of 0, not none, and no first increment is lost to
  Prometheus's rate).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

import model_bundle
from model_bundle.groups import NOT_SENT_GROUP, GroupCoder
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
GROUP_ROWS = Counter(
    "model_group_predictions", "Rows predicted, per group of a sensitive column", [LABEL, "column", "group"]
)
GROUP_CLASSES = Counter(
    "model_group_predicted_class",
    "Predicted labels, per group of a sensitive column",
    [LABEL, "column", "group", "class"],
)
GROUP_SUMS = Counter(
    "model_group_prediction_sum",
    "Sum of the predictions per group of a sensitive column, negative ones (negated) apart",
    [LABEL, "column", "group", "sign"],
)


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
    buckets, the feature monitor's bins and drift, and the counts per group of the sensitive columns. Used by one
    thread only (the server's predict worker): the feature monitor's state is not shared."""

    def __init__(self, model_name: str, bundle: model_bundle.Bundle):
        self.model_name = model_name
        self.classifier = bundle.task == model_bundle.CLASSIFICATION
        profile = bundle.documents.get(model_bundle.PROFILE_FILE)
        self.monitor = FeatureMonitor(profile, bundle.features) if profile else None
        edges = bundle.card.prediction_buckets
        self.bucket_edges = np.asarray(edges, dtype="float64") if edges else None
        self.bucket_labels = bucket_labels(edges) if edges else []
        classes = [str(label) for label in bundle.card.classes or []]
        self.groups = [
            _GroupSeries(model_name, column, GroupCoder(groups), column in bundle.feature_names, classes)
            for column, groups in bundle.card.sensitive_groups.items()
        ]

    def record(
        self, features: pd.DataFrame, predictions: np.ndarray, group_columns: Mapping[str, Sequence] | None = None
    ) -> None:
        """Adds one request's predicted rows: ``features`` as the model took them, ``predictions`` in their order,
        ``group_columns`` the sent values of the excluded sensitive columns (decoding.Decoded.group_columns)."""
        name = self.model_name
        columns = {feature: features[feature].to_numpy() for feature in features.columns}
        for feature, values in columns.items():
            if count := int(pd.isna(values).sum()):
                MISSING.labels(name, feature).inc(count)
        classes = None
        if self.classifier:
            labels, positions, counts = np.unique(predictions.astype(str), return_inverse=True, return_counts=True)
            classes = (labels.tolist(), positions)
            for label, count in zip(classes[0], counts.tolist(), strict=True):
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
        if self.groups:
            self._record_groups(columns, predictions, classes, group_columns or {})

    def _record_groups(
        self,
        features: Mapping[str, np.ndarray],
        predictions: np.ndarray,
        classes: tuple[list[str], np.ndarray] | None,
        sent: Mapping[str, Sequence],
    ) -> None:
        """``classes``: a classifier's predicted labels and each row's position among them."""
        # Counted with np.bincount over group (and class) positions: a few array operations per column, whatever
        # the number of rows, then one increment per group (and class) present.
        rows = len(predictions)
        if classes is not None:
            labels, class_codes = classes
        else:
            predicted = np.asarray(predictions, dtype="float64")
            positive, negative = np.where(predicted > 0, predicted, 0.0), np.where(predicted < 0, -predicted, 0.0)
        for series in self.groups:
            values = features[series.column] if series.feature else sent.get(series.column)
            codes = series.coder.codes(values, rows)
            size = len(series.coder.labels)
            counts = np.bincount(codes, minlength=size)
            present = np.flatnonzero(counts).tolist()
            for group in present:
                series.rows[group].inc(int(counts[group]))
            if classes is not None:
                by_class = np.bincount(codes * len(labels) + class_codes, minlength=size * len(labels))
                for position in np.flatnonzero(by_class).tolist():
                    group, label = divmod(position, len(labels))
                    series.count_class(group, labels[label], int(by_class[position]))
            else:
                for sign, weights in enumerate((positive, negative)):
                    sums = np.bincount(codes, weights=weights, minlength=size)
                    for group in present:
                        series.sums[group][sign].inc(float(sums[group]))


class _GroupSeries:
    """The series of one sensitive column, created at load (at 0) for each of its groups, held by position."""

    def __init__(self, model_name: str, column: str, coder: GroupCoder, feature: bool, classes: list[str]):
        self.model_name = model_name
        self.column = column
        self.coder = coder
        self.feature = feature  # else an excluded column, read from the request when sent
        # A feature is always sent (the request is refused otherwise): no "(not sent)" series for it.
        groups = coder.labels if not feature else [label for label in coder.labels if label != NOT_SENT_GROUP]
        self.rows = {position: GROUP_ROWS.labels(model_name, column, label) for position, label in enumerate(groups)}
        self.classes = {
            (position, label): GROUP_CLASSES.labels(model_name, column, group, label)
            for position, group in enumerate(groups)
            for label in classes
        }
        signs = ("positive", "negative")
        self.sums = {
            position: tuple(GROUP_SUMS.labels(model_name, column, group, sign) for sign in signs)
            for position, group in enumerate(groups)
            if not classes
        }

    def count_class(self, group: int, label: str, count: int) -> None:
        child = self.classes.get((group, label))
        if child is None:  # a label the card does not list (it lists every class the model predicts)
            child = self.classes[(group, label)] = GROUP_CLASSES.labels(
                self.model_name, self.column, self.coder.labels[group], label
            )
        child.inc(count)


def bucket_labels(edges: list[float]) -> list[str]:
    """Readable names of the ranges between ``edges``: "<e0", "e0-e1", ..., ">=eN"."""
    shown = [f"{edge:.6g}" for edge in edges]
    return [f"<{shown[0]}"] + [f"{low}-{high}" for low, high in itertools.pairwise(shown)] + [f">={shown[-1]}"]
