"""Metrics for both tasks, and which metric decides whether one model is better than another."""

from __future__ import annotations

import numpy as np
from sklearn import metrics

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)

# The metric the gate compares: unitless, so one min_improvement means the same on any data.
PRIMARY_METRIC = {REGRESSION: "r2", CLASSIFICATION: "f1_macro"}
HIGHER_IS_BETTER = {
    "r2": True,
    "rmse": False,
    "mae": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
}
METRICS_BY_TASK = {
    REGRESSION: ("r2", "rmse", "mae"),
    CLASSIFICATION: ("accuracy", "balanced_accuracy", "f1_macro"),
}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def score(task: str, y_true, y_pred) -> dict[str, float]:
    """Every metric of ``task`` for predictions ``y_pred`` against ``y_true``."""
    check_task(task)
    if task == REGRESSION:
        y_true = np.asarray(y_true, dtype="float64")
        y_pred = np.asarray(y_pred, dtype="float64")
        return {
            "r2": float(metrics.r2_score(y_true, y_pred)),
            "rmse": float(metrics.root_mean_squared_error(y_true, y_pred)),
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        }
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def improvement(metric: str, challenger: float, reference: float) -> float:
    """How much better ``challenger`` is than ``reference`` on ``metric`` (negative when worse)."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {sorted(HIGHER_IS_BETTER)}")
    return challenger - reference if HIGHER_IS_BETTER[metric] else reference - challenger


def score_bundle(bundle, frame, target: str) -> dict[str, float]:
    """Scores a loaded model bundle on ``frame`` (features plus ``target``) with the metrics of its task.

    Raises model_bundle.FeatureError when the frame lacks a column the model needs.
    """
    return score(bundle.task, frame[target], bundle.predict(frame.drop(columns=[target])))
