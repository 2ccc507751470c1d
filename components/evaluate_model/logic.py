"""Scores a trained model on the held-out test set, next to a constant-prediction baseline, overall and per slice
(slices by the rule the gate judges them by: components._common.slices), and its fairness across the groups of each
sensitive column (components._common.fairness, the numbers the gate's fairness guard reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import confusion_matrix, roc_curve
from sklearn.preprocessing import label_binarize

from components._common.fairness import (
    MIN_GROUP_ROWS,
    ColumnFairness,
    assess,
    check_sensitive_columns,
    group_labels,
    positive_label,
)
from components._common.scoring import CLASSIFICATION, score, score_bundle
from components._common.slices import MAX_SLICES, Slice, SliceRule, score_slices, slice_labels
from model_bundle import Bundle

# Enough points for a smooth curve in the KFP UI, few enough for the artifact's metadata.
MAX_ROC_POINTS = 200


@dataclass(frozen=True)
class RocCurve:
    """Points of a ROC curve, thresholds included; every number finite, within [0, 1]."""

    name: str
    fpr: list[float]
    tpr: list[float]
    thresholds: list[float]


@dataclass
class Evaluation:
    task: str
    target: str
    scores: dict[str, float]
    baseline_scores: dict[str, float]
    test_rows: int
    # Per test row, for the report's plots: true and predicted values, class probabilities (None without).
    actual: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray | None = None
    classes: list[str] | None = None
    # Rows (true) and columns (predicted) of the confusion matrix: the model's classes, then any label of the test
    # rows or the predictions that is not one of them, so every test row is counted, as accuracy counts it.
    confusion_labels: list[str] | None = None
    confusion_matrix: list[list[int]] | None = None
    # Binary: the positive class's curve; multiclass: the micro-averaged one-vs-rest curve. None without
    # probabilities or when the test set holds a single class.
    roc_curve: RocCurve | None = None
    slice_column: str = ""
    slices: list[Slice] = field(default_factory=list)
    slice_rule: SliceRule = field(default_factory=SliceRule)  # slices under its min_slice_rows are not scored
    # One per sensitive column, in the order given; groups under min_group_rows test rows are not scored.
    fairness: list[ColumnFairness] = field(default_factory=list)
    min_group_rows: int = MIN_GROUP_ROWS
    # The class the fairness rates count as the positive outcome (fairness.positive_label): binary classifiers only.
    positive_label: str | None = None


def baseline_scores(task: str, train_target: pd.Series, test_target: pd.Series) -> dict[str, float]:
    """Scores of always predicting the training mean (regression), or the most frequent training class with the
    training class frequencies as probabilities (classification: ROC AUC 0.5)."""
    train_target = train_target.dropna()
    if task == CLASSIFICATION:
        dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(train_target), 1)), train_target.astype(str))
        rows = np.zeros((len(test_target), 1))
        return score(task, test_target, dummy.predict(rows), dummy.predict_proba(rows), dummy.classes_)
    dummy = DummyRegressor(strategy="mean").fit(np.zeros((len(train_target), 1)), train_target)
    return score(task, test_target, dummy.predict(np.zeros((len(test_target), 1))))


def evaluate(
    bundle: Bundle,
    train: pd.DataFrame,
    test: pd.DataFrame,
    slice_column: str = "",
    slice_rule: SliceRule | None = None,
    sensitive_columns: Sequence[str] = (),
    min_group_rows: int = MIN_GROUP_ROWS,
) -> Evaluation:
    """The model's and the baseline's test scores, what the report plots, per-slice scores by ``slice_column``
    (empty: none) under ``slice_rule`` (None: the default rule), and the fairness across the groups of each of
    ``sensitive_columns`` (any column of the test set but the target: one the model does not use is audited too),
    judging groups of at least ``min_group_rows`` rows. A binary classifier's positive outcome is its second class
    (the ROC curve's); a multiclass one is judged one class at a time. Raises ValueError for an empty test set, a
    slice column that is not a feature of it, or a sensitive column it does not have."""
    target = bundle.card.target
    if test.empty:
        raise ValueError("the test set has no rows")
    slice_rule = slice_rule or SliceRule()
    labels = slice_labels(test, target, slice_column)
    sensitive_columns = check_sensitive_columns(sensitive_columns, test.columns, target=target)
    if bundle.task == CLASSIFICATION:
        check_labels(test[target], bundle.card.classes)
    scored = score_bundle(bundle, test)
    if bundle.task == CLASSIFICATION:
        classes = [str(label) for label in bundle.card.classes]
        actual = test[target].astype(str).to_numpy()
        predicted = scored.predictions.astype(str)
    else:
        classes = None
        actual = test[target].to_numpy(dtype="float64")
        predicted = scored.predictions
    evaluation = Evaluation(
        task=bundle.task,
        target=target,
        scores=scored.scores,
        baseline_scores=baseline_scores(bundle.task, train[target], test[target]),
        test_rows=len(test),
        actual=actual,
        predicted=predicted,
        probabilities=scored.probabilities,
        classes=classes,
        slice_column=slice_column,
        slice_rule=slice_rule,
        min_group_rows=min_group_rows,
    )
    if bundle.task == CLASSIFICATION:
        unknown = sorted(set(np.union1d(actual, predicted).tolist()) - set(classes))
        evaluation.confusion_labels = classes + unknown
        evaluation.confusion_matrix = confusion_matrix(actual, predicted, labels=evaluation.confusion_labels).tolist()
        if scored.probabilities is not None:
            evaluation.roc_curve = summary_roc_curve(actual, scored.probabilities, classes)
    if labels is not None:
        evaluation.slices = score_slices(
            labels, slice_rule, bundle.task, actual, predicted, scored.probabilities, classes, max_listed=MAX_SLICES
        )
    evaluation.positive_label = positive_label(bundle.task, classes)
    evaluation.fairness = [
        assess(
            bundle.task,
            actual,
            predicted,
            group_labels(test, column),
            positive_label=evaluation.positive_label,
            min_group_rows=min_group_rows,
        )
        for column in sensitive_columns
    ]
    return evaluation


def check_labels(labels: pd.Series, classes: list[str]) -> None:
    """Raises ValueError when no test label is one of the model's ``classes`` (compared as text): the labels were
    renamed or retyped (1 read as 1.0), and every row would be scored as wrong. Some labels outside them are a class
    the model never saw: scored, and shown in the confusion matrix."""
    found = pd.unique(pd.Series(labels.unique()).astype(str))  # distinct labels first: millions of rows, few labels
    if not np.isin(found, [str(label) for label in classes]).any():
        raise ValueError(
            f"target column {labels.name!r}: none of the test labels {sorted(found)[:10]} is one of the model's "
            f"classes {list(classes)}: were the labels renamed or retyped (1 read as 1.0)? Evaluate the model on "
            "data labelled as its training data was"
        )


def summary_roc_curve(actual: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> RocCurve | None:
    """The one ROC curve KFP shows: binary, that of ``classes[1]``; multiclass, the micro-average (every
    (row, class) pair one binary decision). None when there are no positives or no negatives to tell apart."""
    if len(classes) == 2:
        name, positive, scores = f"positive class {classes[1]}", actual == classes[1], probabilities[:, 1]
    else:
        name = "micro-average one-vs-rest"
        positive = label_binarize(actual, classes=classes).ravel().astype(bool)
        scores = probabilities.ravel()
    if positive.all() or not positive.any():
        return None
    fpr, tpr, thresholds = roc_curve(positive, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), MAX_ROC_POINTS)).round().astype(int))
    # scikit-learn's first threshold is +inf ("above every score"); probabilities never exceed 1.
    thresholds = np.minimum(thresholds, 1.0)
    return RocCurve(name, fpr[keep].tolist(), tpr[keep].tolist(), thresholds[keep].tolist())
