"""Scores a trained model on the held-out test set, next to a constant-prediction baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import confusion_matrix

from components._common.scoring import CLASSIFICATION, score
from model_bundle import Bundle


@dataclass
class Evaluation:
    scores: dict[str, float]
    baseline_scores: dict[str, float]
    test_rows: int
    classes: list[str] | None = None
    confusion_matrix: list[list[int]] | None = None


def baseline_scores(task: str, train_target: pd.Series, test_target: pd.Series) -> dict[str, float]:
    """Scores of always predicting the training mean (regression) or most frequent class (classification)."""
    if task == CLASSIFICATION:
        dummy = DummyClassifier(strategy="most_frequent").fit(
            np.zeros((len(train_target), 1)), train_target.astype(str)
        )
    else:
        dummy = DummyRegressor(strategy="mean").fit(np.zeros((len(train_target), 1)), train_target)
    return score(task, test_target, dummy.predict(np.zeros((len(test_target), 1))))


def evaluate(bundle: Bundle, train: pd.DataFrame, test: pd.DataFrame) -> Evaluation:
    target = bundle.card["target"]
    if test.empty:
        raise ValueError("the test set has no rows")
    predicted = bundle.predict(test.drop(columns=[target]))
    evaluation = Evaluation(
        scores=score(bundle.task, test[target], predicted),
        baseline_scores=baseline_scores(bundle.task, train[target], test[target]),
        test_rows=len(test),
    )
    if bundle.task == CLASSIFICATION:
        classes = [str(label) for label in bundle.card["classes"]]
        evaluation.classes = classes
        evaluation.confusion_matrix = confusion_matrix(
            test[target].astype(str), predicted.astype(str), labels=classes
        ).tolist()
    return evaluation
