"""Metrics for both tasks, a model bundle's predictions scored on a table, and which metric decides whether one
model is better than another."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics

from model_bundle import CLASSIFICATION, REGRESSION, TASKS  # the task names belong to the model card

# The metric the gate compares: unitless, so one min_improvement means the same on any data.
PRIMARY_METRIC = {REGRESSION: "r2", CLASSIFICATION: "f1_macro"}
HIGHER_IS_BETTER = {
    "r2": True,
    "rmse": False,
    "mae": False,
    "mape": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "log_loss": False,
}
# Where each metric's values lie, so a threshold outside can be refused (90 for an accuracy meant as 0.9).
METRIC_RANGES = {
    "r2": (-math.inf, 1.0),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "mape": (0.0, math.inf),
    "accuracy": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "log_loss": (0.0, math.inf),
}
METRICS_BY_TASK = {
    REGRESSION: ("r2", "rmse", "mae", "mape"),
    CLASSIFICATION: ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"),
}
# MAPE divides each error by |true value|. A true value at 1% of the median |true value| weighs its row's error
# 100 times a typical row's, so that one row's ordinary error outweighs the rest of the average (and at 0 the
# percentage does not exist: scikit-learn then reports ~1e16). MAPE is only reported when no true value is that close
# to zero; relative to the median, so the rule reads the same in any unit.
MAPE_NEAR_ZERO_FRACTION = 0.01


def label_codes(*arrays) -> tuple[np.ndarray, list[np.ndarray]]:
    """The labels of ``arrays`` as text (``astype(str)``, as the classification metrics compare them: 1 and "1" are
    one label), sorted, and each array's values as codes into them. Hashed, not sorted (only the distinct labels
    are sorted), so millions of rows take a fraction of a second per array."""
    factorized = [_text_codes(np.asarray(values)) for values in arrays]
    labels = np.unique(np.concatenate([uniques for _, uniques in factorized]))
    return labels, [np.searchsorted(labels, uniques)[codes] for codes, uniques in factorized]


def _text_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` and their distinct texts. Only the distinct values become text where equal values and
    equal texts are the same thing (integers, booleans, all text); otherwise (floats: -0.0 is 0.0; 1 beside 1.0 in
    one object array) every value becomes text first."""
    if values.dtype.kind in "iubU":
        codes, uniques = pd.factorize(values)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if not all(isinstance(value, str) for value in uniques):
            codes, uniques = pd.factorize(values.astype(str))
    return codes, np.asarray(uniques).astype(str)


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def score(task: str, y_true, y_pred, probabilities=None, classes=None) -> dict[str, float]:
    """Every metric of ``task`` for predictions ``y_pred`` against ``y_true``; every value is a finite number.

    ``mape`` is a fraction (0.1 is 10%), left out when a true value is at or near zero (see ``mape_near_zero``).
    The probability metrics of a classifier, ``roc_auc`` and ``log_loss``, need ``probabilities`` (one row per
    label, one column per entry of ``classes``). A metric that is undefined on these labels is left out rather than
    NaN (NaN breaks JSON and KFP metrics): ``roc_auc`` when ``y_true`` holds a single class, ``log_loss`` when
    ``y_true`` holds a label outside ``classes`` (the model gives it no probability).
    ``roc_auc`` is one-vs-rest: binary, that of ``classes[1]``; multiclass, the macro average over the classes
    present in ``y_true`` (an absent class has no positives, hence no ROC AUC).
    """
    check_task(task)
    if task == REGRESSION:
        y_true = np.asarray(y_true, dtype="float64")
        y_pred = np.asarray(y_pred, dtype="float64")
        scores = {
            "r2": float(metrics.r2_score(y_true, y_pred)),
            "rmse": float(metrics.root_mean_squared_error(y_true, y_pred)),
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        }
        if mape_near_zero(y_true)[0] == 0:
            scores["mape"] = float(metrics.mean_absolute_percentage_error(y_true, y_pred))
        return scores
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    scores = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    if probabilities is None:
        return scores
    classes, probabilities = _check_probabilities(y_true, probabilities, classes)
    by_class = roc_auc_by_class(y_true, probabilities, classes)
    if by_class:
        scores["roc_auc"] = by_class[classes[1]] if len(classes) == 2 else float(np.mean(list(by_class.values())))
    if np.isin(y_true, classes).all():
        # log_loss reads probability columns in sorted label order, whatever the order of ``labels``.
        order = np.argsort(classes)
        scores["log_loss"] = float(metrics.log_loss(y_true, probabilities[:, order], labels=np.asarray(classes)[order]))
    return scores


def mape_near_zero(y_true) -> tuple[int, float]:
    """How many true values are at or near zero for MAPE, and the bound they are within: ``|y| <= bound`` where
    ``bound`` is MAPE_NEAR_ZERO_FRACTION of the median ``|y|`` (0 when most values are 0, so zeros still count)."""
    magnitude = np.abs(np.asarray(y_true, dtype="float64"))
    if magnitude.size == 0:
        return 0, 0.0
    bound = float(MAPE_NEAR_ZERO_FRACTION * np.median(magnitude))
    return int((magnitude <= bound).sum()), bound


def mape_undefined_reason(y_true, subject: str = "the target") -> str | None:
    """Why MAPE is left out for these true values, as a sentence about ``subject``; None when it is reported."""
    count, bound = mape_near_zero(y_true)
    if count == 0:
        return None
    return (
        f"{subject} has {count:,} of {len(np.asarray(y_true)):,} values at or near zero (|value| <= {bound:.4g}, "
        f"{MAPE_NEAR_ZERO_FRACTION:.0%} of the median |value|), where a percentage error is undefined"
    )


def roc_auc_by_class(y_true, probabilities, classes) -> dict[str, float]:
    """One-vs-rest ROC AUC of each class of ``classes`` that ``y_true`` holds, when it holds at least two."""
    y_true = np.asarray(y_true).astype(str)
    probabilities = np.asarray(probabilities, dtype="float64")
    by_class = {}
    for column, label in enumerate(classes):
        positive = y_true == label
        if positive.any() and not positive.all():
            by_class[label] = float(metrics.roc_auc_score(positive, probabilities[:, column]))
    return by_class if len(by_class) >= 2 else {}


def _check_probabilities(y_true: np.ndarray, probabilities, classes) -> tuple[list[str], np.ndarray]:
    if classes is None:
        raise ValueError("score: probabilities need the classes their columns stand for")
    classes = [str(label) for label in classes]
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"score: probabilities have shape {probabilities.shape}, expected ({len(y_true)}, {len(classes)}): "
            f"one row per label and one column per class of {classes}"
        )
    return classes, probabilities


def improvement(metric: str, challenger, reference):
    """How much better ``challenger`` is than ``reference`` on ``metric`` (negative when worse): two numbers, or two
    arrays of scores (the bootstrap's resamples) compared element by element."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {sorted(HIGHER_IS_BETTER)}")
    return challenger - reference if HIGHER_IS_BETTER[metric] else reference - challenger


# Rows a model scores at a time: its pipeline's copies of them (typed, imputed, scaled, one-hot) last one chunk (one
# per core scoring at once), so scoring millions of test rows costs the predictions, not several copies of the table.
SCORING_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class Scored:
    """A model's predictions on a table's rows, its class probabilities (columns in the card's ``classes`` order;
    None for a regressor or a classifier without them), and its scores there."""

    predictions: np.ndarray
    scores: dict[str, float]
    probabilities: np.ndarray | None = None


def score_bundle(bundle, frame) -> Scored:
    """A loaded model bundle's predictions on ``frame`` (features plus the card's target) and its scores there,
    with the metrics of its task (a classifier's probability metrics when it gives probabilities).

    Raises model_bundle.FeatureError when the frame lacks a column the model needs, ValueError when a row has no
    target value or the model predicts a value that is not a finite number or a probability outside [0, 1]
    (``check_predictions``).
    """
    target = bundle.card.target
    unlabelled = frame[target].isna().to_numpy()
    if unlabelled.any():
        # A missing label would be scored as one more class ("nan") or stop a regression's metrics with "Input
        # contains NaN": the rows to score are labelled ones (prepare_data drops the others).
        raise ValueError(
            f"target column {target!r} has {int(unlabelled.sum()):,} missing value(s) of {len(frame):,} rows, the "
            f"first at row {int(np.argmax(unlabelled))}: a model is scored on labelled rows only; drop the others "
            "(prepare_data's train and test sets hold labelled rows only)"
        )
    features = frame.drop(columns=[target])
    predicted = predict_in_chunks(bundle.predict, features)
    probabilities = None
    if bundle.task == CLASSIFICATION and hasattr(bundle.model, "predict_proba"):
        probabilities = predict_in_chunks(bundle.predict_proba, features)
    check_predictions(bundle, predicted, probabilities)
    scores = score(bundle.task, frame[target], predicted, probabilities, bundle.card.classes)
    return Scored(predictions=predicted, scores=scores, probabilities=probabilities)


def check_predictions(bundle, predicted: np.ndarray, probabilities: np.ndarray | None) -> None:
    """Raises ValueError, naming the model, the count and the first row, when a regressor predicts a value that is
    not a finite number or a classifier a probability that is not one within [0, 1]: scikit-learn's metrics would
    stop with "Input contains NaN", which reads as bad input data, not a bad model."""
    name = f"model {bundle.directory} ({bundle.card.estimator or type(bundle.model).__name__})"
    if bundle.task != CLASSIFICATION:
        values = pd.to_numeric(pd.Series(np.asarray(predicted).ravel()), errors="coerce").to_numpy(dtype="float64")
        _refuse_bad_rows(
            name, "predicted", ~np.isfinite(values), "values that are not finite numbers (NaN, None or infinite)"
        )
    if probabilities is not None:
        values = np.asarray(probabilities, dtype="float64")
        bad = ~(np.isfinite(values) & (values >= 0.0) & (values <= 1.0))
        _refuse_bad_rows(name, "gave", bad.any(axis=1), "class probabilities that are not numbers within [0, 1]")


def _refuse_bad_rows(name: str, verb: str, bad: np.ndarray, what: str) -> None:
    count = int(bad.sum())
    if count:
        raise ValueError(
            f"{name} {verb} {what} for {count:,} of {len(bad):,} rows, the first at row {int(np.argmax(bad))}: it "
            "cannot be scored; fix or retrain the model (e.g. an estimator that overflows on these rows)"
        )


def predict_in_chunks(predict, features) -> np.ndarray:
    """``predict(features)`` on ``SCORING_CHUNK_ROWS`` rows at a time, joined, as many chunks at once as the process
    may use cores (joblib.cpu_count: the CPU limit of the pod, its affinity). A model scores each row on its own, so
    the result is the one-chunk-at-a-time result bit for bit; a random forest, whose trees free the GIL, scores
    about twice as fast on two cores (docs/benchmarks.md, "Scoring and fitting on the pod's cores")."""
    if len(features) <= SCORING_CHUNK_ROWS:
        return np.asarray(predict(features))
    starts = range(0, len(features), SCORING_CHUNK_ROWS)
    with ThreadPoolExecutor(min(len(starts), joblib.cpu_count())) as pool:
        chunks = pool.map(lambda start: np.asarray(predict(features.iloc[start : start + SCORING_CHUNK_ROWS])), starts)
        return np.concatenate(list(chunks))
