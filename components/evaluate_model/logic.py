"""Scores a trained model on the held-out test set, next to a constant-prediction baseline, overall and per slice."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import confusion_matrix, roc_curve
from sklearn.preprocessing import label_binarize

from components._common.scoring import CLASSIFICATION, MIN_SLICE_ROWS, predictions, score, slice_labels
from model_bundle import Bundle

# More slices do not fit a readable table; the smaller ones are reported together as one remainder.
MAX_SLICES = 50
# Enough points for a smooth curve in the KFP UI, few enough for the artifact's metadata.
MAX_ROC_POINTS = 200


@dataclass(frozen=True)
class Slice:
    """Test rows sharing one value of the slice column; ``scores`` is None below MIN_SLICE_ROWS rows."""

    value: str
    rows: int
    scores: dict[str, float] | None


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
    confusion_matrix: list[list[int]] | None = None
    # Binary: the positive class's curve; multiclass: the micro-averaged one-vs-rest curve. None without
    # probabilities or when the test set holds a single class.
    roc_curve: RocCurve | None = None
    slice_column: str = ""
    slices: list[Slice] = field(default_factory=list)


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


def evaluate(bundle: Bundle, train: pd.DataFrame, test: pd.DataFrame, slice_column: str = "") -> Evaluation:
    """The model's and the baseline's test scores, what the report plots, and per-slice scores by ``slice_column``
    (empty: none). Raises ValueError for an empty test set or a slice column that is not a feature of it."""
    target = bundle.card.target
    if test.empty:
        raise ValueError("the test set has no rows")
    slice_values = _slice_values(test, target, slice_column) if slice_column else None
    predicted, probabilities = predictions(bundle, test.drop(columns=[target]))
    if bundle.task == CLASSIFICATION:
        classes = [str(label) for label in bundle.card.classes]
        actual = test[target].astype(str).to_numpy()
        predicted = predicted.astype(str)
    else:
        classes = None
        actual = test[target].to_numpy(dtype="float64")
    evaluation = Evaluation(
        task=bundle.task,
        target=target,
        scores=score(bundle.task, actual, predicted, probabilities, classes),
        baseline_scores=baseline_scores(bundle.task, train[target], test[target]),
        test_rows=len(test),
        actual=actual,
        predicted=predicted,
        probabilities=probabilities,
        classes=classes,
        slice_column=slice_column,
    )
    if bundle.task == CLASSIFICATION:
        evaluation.confusion_matrix = confusion_matrix(actual, predicted, labels=classes).tolist()
        if probabilities is not None:
            evaluation.roc_curve = summary_roc_curve(actual, probabilities, classes)
    if slice_values is not None:
        evaluation.slices = score_slices(evaluation, slice_values)
    return evaluation


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


def score_slices(evaluation: Evaluation, slice_values: pd.Series) -> list[Slice]:
    """Scores per value of the slice column, largest slice first (ties by value); beyond MAX_SLICES, the smallest
    slices are summarised as one remainder."""
    values = slice_values.to_numpy()
    names, sizes = np.unique(values, return_counts=True)
    ordered = sorted(zip(names.tolist(), sizes.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
    shown, rest = ordered[:MAX_SLICES], [name for name, _ in ordered[MAX_SLICES:]]
    slices = [_score_slice(evaluation, name, values == name) for name, _ in shown]
    if rest:
        slices.append(_score_slice(evaluation, f"({len(rest)} other values)", np.isin(values, rest)))
    return slices


def _score_slice(evaluation: Evaluation, name: str, mask: np.ndarray) -> Slice:
    rows = int(mask.sum())
    if rows < MIN_SLICE_ROWS:
        return Slice(name, rows, None)
    probabilities = evaluation.probabilities[mask] if evaluation.probabilities is not None else None
    scores = score(
        evaluation.task, evaluation.actual[mask], evaluation.predicted[mask], probabilities, evaluation.classes
    )
    return Slice(name, rows, scores)


def _slice_values(test: pd.DataFrame, target: str, slice_column: str) -> pd.Series:
    """The slice column's label per test row (as the gate labels slices)."""
    features = [str(name) for name in test.columns if name != target]
    if slice_column not in features:
        raise ValueError(
            f"parameter slice_column: {slice_column!r} is not a feature column of the test set; "
            f"feature columns are {features}"
        )
    return slice_labels(test[slice_column])
