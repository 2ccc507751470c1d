"""The constant baseline the gate measures a challenger against when no champion is compared: the one value the
model card says predicting without the features gives (the training mean, or the most frequent training class)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components._common.scoring import CLASSIFICATION, REGRESSION
from model_bundle import ModelCard

# What the gain over the constant baseline is measured in, without a champion. On these, predictions made without
# looking at the features score no better than the constant on average (r2 at most 0, balanced accuracy
# 1 / classes), so a gain beyond noise means the model learned something. Not macro F1: guesses spread over the
# classes beat a constant's macro F1 (it scores only one class), so a model of pure noise would often pass.
BASELINE_EVIDENCE_METRIC = {REGRESSION: "r2", CLASSIFICATION: "balanced_accuracy"}


@dataclass(frozen=True)
class ConstantBaseline:
    """The one value the constant baseline predicts for every test row, and what it is (for the reasons)."""

    value: float | str
    description: str  # e.g. "the training mean"
    note: str = ""  # why it is not the training rows' constant, when it is not

    def predictions(self, rows: int) -> np.ndarray:
        return np.full(rows, self.value, dtype="float64" if isinstance(self.value, float) else object)

    def described(self) -> str:
        """What it predicts, e.g. "the training mean 250000" or "the most frequent training class 'B'"."""
        value = f"{self.value:.6g}" if isinstance(self.value, float) else repr(self.value)
        return f"{self.description} {value}"


def constant_baseline(card: ModelCard, y_true) -> ConstantBaseline:
    """evaluate_model's constant baseline as the model card records it (``baseline_prediction``: the training
    target's mean, or its most frequent class). A card without it (a model trained before the card had it) falls
    back to the test rows' mean or most frequent class, and the description says so."""
    task = card.task
    value = card.baseline_prediction
    if value is None:
        return baseline_of_test_rows(task, y_true)
    if task == CLASSIFICATION:
        classes = [str(label) for label in card.classes or []]
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int | float)
            or (classes and str(value) not in classes)
        ):
            raise ValueError(
                f"model card key 'baseline_prediction' must be one of the model's classes {classes}, got {value!r}"
            )
        return ConstantBaseline(str(value), "the most frequent training class")
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"model card key 'baseline_prediction' must be a finite number for regression, got {value!r}")
    return ConstantBaseline(float(value), "the training mean")


def baseline_of_test_rows(task: str, y_true) -> ConstantBaseline:
    """The test rows' own mean or most frequent class: the stand-in when no model card records the training one."""
    y_true = np.asarray(y_true)
    note = (
        "the model card has no baseline_prediction, as models trained before cards recorded it do not: the test "
        "rows' constant stands in for the training rows'"
    )
    if task == CLASSIFICATION:
        labels, counts = np.unique(y_true.astype(str), return_counts=True)
        return ConstantBaseline(str(labels[counts.argmax()]), "the test rows' most frequent class", note)
    return ConstantBaseline(float(y_true.astype("float64").mean()), "the test rows' mean", note)
