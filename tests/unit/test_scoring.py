"""_common.scoring: the metrics of each task on inputs small enough to check by hand, and improvement direction."""

from __future__ import annotations

import math

import pytest

from components._common.scoring import (
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    PRIMARY_METRIC,
    check_task,
    improvement,
    score,
    score_bundle,
)
from model_bundle import FeatureError


def test_perfect_regression():
    assert score("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == {"r2": 1.0, "rmse": 0.0, "mae": 0.0}


def test_regression_metrics_by_hand():
    # Errors -1, 0, 1 around the mean: r2 = 0, rmse = sqrt(2/3), mae = 2/3.
    scores = score("regression", [1.0, 2.0, 3.0], [2.0, 2.0, 2.0])

    assert scores["r2"] == pytest.approx(0.0)
    assert scores["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert scores["mae"] == pytest.approx(2 / 3)


def test_regression_accepts_integers_and_strings_of_numbers():
    assert score("regression", [1, 2, 4], ["1", "2", "4"])["r2"] == 1.0


def test_classification_metrics_by_hand():
    # a: precision 1, recall 1/2 -> f1 2/3; b: precision 2/3, recall 1 -> f1 4/5.
    scores = score("classification", ["a", "a", "b", "b"], ["a", "b", "b", "b"])

    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["balanced_accuracy"] == pytest.approx(0.75)
    assert scores["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_classification_compares_labels_as_text():
    # Labels from a CSV (ints) and from the model (strings) must match.
    assert score("classification", [1, 2, 2], ["1", "2", "2"])["accuracy"] == 1.0


def test_class_never_predicted_scores_zero_f1():
    scores = score("classification", ["a", "b"], ["a", "a"])

    assert scores["f1_macro"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_every_task_scores_its_metrics():
    assert set(score("regression", [1.0, 2.0], [1.0, 2.5])) == set(METRICS_BY_TASK["regression"])
    assert set(score("classification", ["a", "b"], ["a", "b"])) == set(METRICS_BY_TASK["classification"])
    for task, metric in PRIMARY_METRIC.items():
        assert metric in METRICS_BY_TASK[task]
        assert HIGHER_IS_BETTER[metric]


@pytest.mark.parametrize(
    ("metric", "challenger", "reference", "expected"),
    [
        ("r2", 0.8, 0.7, 0.1),
        ("r2", 0.6, 0.7, -0.1),
        ("f1_macro", 0.9, 0.5, 0.4),
        ("accuracy", 0.5, 0.5, 0.0),
        ("rmse", 10.0, 12.0, 2.0),
        ("rmse", 12.0, 10.0, -2.0),
        ("mae", 3.0, 5.0, 2.0),
    ],
)
def test_improvement_follows_the_metric_direction(metric, challenger, reference, expected):
    assert improvement(metric, challenger, reference) == pytest.approx(expected)


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match=r"unknown metric 'auc'; known metrics: \['accuracy'"):
        improvement("auc", 0.9, 0.8)


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match=r"task must be one of \('regression', 'classification'\), got 'ranking'"):
        score("ranking", [1], [1])
    with pytest.raises(ValueError, match=r"got 'Regression'"):
        check_task("Regression")


def test_score_bundle_scores_the_test_rows(regression_bundle):
    bundle, test = regression_bundle

    scores = score_bundle(bundle, test, "price")

    assert scores == score("regression", test["price"], bundle.predict(test.drop(columns=["price"])))
    assert scores["r2"] > 0.5


def test_score_bundle_names_a_missing_feature(regression_bundle):
    bundle, test = regression_bundle

    with pytest.raises(FeatureError, match=r"missing column\(s\) \['rooms'\]"):
        score_bundle(bundle, test.drop(columns=["rooms"]), "price")
