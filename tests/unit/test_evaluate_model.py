"""evaluate_model: test-set scores next to the constant baseline, and the classifier's confusion matrix."""

from __future__ import annotations

import pandas as pd
import pytest

from components._common.scoring import score_bundle
from components.evaluate_model.logic import baseline_scores, evaluate
from components.prepare_data.logic import prepare


@pytest.fixture(scope="module")
def regression_train(houses) -> pd.DataFrame:
    # The conftest bundles are trained on prepare(..., seed=1).train.
    return prepare(houses, target="price", task="regression", seed=1).train


@pytest.fixture(scope="module")
def classification_train(houses) -> pd.DataFrame:
    return prepare(houses, target="energy_label", task="classification", seed=1).train


def test_regression_scores_and_baseline(regression_bundle, regression_train):
    bundle, test = regression_bundle

    evaluation = evaluate(bundle, regression_train, test)

    assert evaluation.test_rows == len(test)
    assert evaluation.scores == score_bundle(bundle, test, "price")
    assert set(evaluation.baseline_scores) == {"r2", "rmse", "mae"}
    assert evaluation.baseline_scores["r2"] <= 0.05  # the training mean explains (almost) nothing
    assert evaluation.scores["r2"] > evaluation.baseline_scores["r2"]
    assert evaluation.scores["rmse"] < evaluation.baseline_scores["rmse"]
    assert evaluation.classes is None
    assert evaluation.confusion_matrix is None


def test_classifier_confusion_matrix(classification_bundle, classification_train):
    bundle, test = classification_bundle

    evaluation = evaluate(bundle, classification_train, test)

    classes = bundle.card["classes"]
    assert evaluation.classes == classes
    matrix = evaluation.confusion_matrix
    assert len(matrix) == len(classes)
    assert all(len(row) == len(classes) for row in matrix)
    assert sum(map(sum, matrix)) == len(test)
    # Rows are the true labels in card order.
    true_counts = test["energy_label"].astype(str).value_counts()
    assert [sum(row) for row in matrix] == [int(true_counts.get(label, 0)) for label in classes]
    correct = sum(matrix[i][i] for i in range(len(classes)))
    assert correct / len(test) == pytest.approx(evaluation.scores["accuracy"])
    assert evaluation.scores["accuracy"] > evaluation.baseline_scores["accuracy"]


def test_regression_baseline_predicts_the_training_mean():
    scores = baseline_scores("regression", pd.Series([1.0, 2.0, 3.0]), pd.Series([2.0, 4.0]))

    # Always 2.0: errors 0 and 2.
    assert scores["mae"] == pytest.approx(1.0)
    assert scores["rmse"] == pytest.approx(2**0.5)


def test_classification_baseline_predicts_the_most_frequent_training_class():
    scores = baseline_scores("classification", pd.Series(["a", "a", "b"]), pd.Series(["a", "b", "b", "a"]))

    assert scores["accuracy"] == pytest.approx(0.5)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)


def test_empty_test_set_is_refused(regression_bundle, regression_train):
    bundle, test = regression_bundle

    with pytest.raises(ValueError, match=r"the test set has no rows"):
        evaluate(bundle, regression_train, test.iloc[0:0])
