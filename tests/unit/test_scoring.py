"""_common.scoring: the metrics of each task on inputs small enough to check by hand, and improvement direction."""

from __future__ import annotations

import json
import math
import threading
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from components._common import scoring
from components._common.scoring import (
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    PRIMARY_METRIC,
    check_task,
    improvement,
    mape_near_zero,
    mape_undefined_reason,
    score,
    score_bundle,
)
from model_bundle import FeatureError


def test_perfect_regression():
    assert score("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == {"r2": 1.0, "rmse": 0.0, "mae": 0.0, "mape": 0.0}


def test_regression_metrics_by_hand():
    # Errors -1, 0, 1 around the mean: r2 = 0, rmse = sqrt(2/3), mae = 2/3, mape = (1/1 + 0/2 + 1/3) / 3 = 4/9.
    scores = score("regression", [1.0, 2.0, 3.0], [2.0, 2.0, 2.0])

    assert scores["r2"] == pytest.approx(0.0)
    assert scores["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert scores["mae"] == pytest.approx(2 / 3)
    assert scores["mape"] == pytest.approx(4 / 9)


def test_mape_is_left_out_when_a_true_value_is_zero():
    # scikit-learn would report (1 / eps) / 3 ~ 1.5e15 here.
    scores = score("regression", [0.0, 2.0, 4.0], [1.0, 2.0, 4.0])

    assert "mape" not in scores
    assert scores["mae"] == pytest.approx(1 / 3)
    assert set(scores) == {"r2", "rmse", "mae"}
    json.dumps(scores, allow_nan=False)


def test_mape_is_left_out_when_a_true_value_is_near_zero_relative_to_the_typical_one():
    # Median |y| 100: values within 1 of zero (1%) count as near zero, whatever their sign.
    others = [100.0, 100.0, 120.0, 90.0]
    assert "mape" not in score("regression", [-0.8, *others], [5.0, *others])
    assert "mape" not in score("regression", [1.0, *others], [5.0, *others])
    kept = score("regression", [1.5, *others], [3.0, 100.0, 100.0, 110.0, 90.0])
    assert kept["mape"] == pytest.approx((1.5 / 1.5 + 0 + 0 + 10 / 120 + 0) / 5)


def test_mape_rule_reads_the_same_in_any_unit():
    y = np.array([0.05, 3.0, 5.0, 8.0])  # median 4: the bound is 0.04
    for scale in (1.0, 1e-3, 1e6):
        assert mape_near_zero(y * scale) == (0, pytest.approx(0.04 * scale))
        assert mape_near_zero(np.append(y, 0.03) * scale) == (1, pytest.approx(0.03 * scale))


def test_mostly_zero_target_counts_every_zero():
    assert mape_near_zero([0.0, 0.0, 0.0, 4.0, 5.0]) == (3, 0.0)


def test_mape_undefined_reason_says_how_many_values_and_the_bound():
    assert mape_undefined_reason([1.0, 2.0, 3.0]) is None
    assert mape_undefined_reason([0.0, 200.0, 300.0, 0.5, 100.0], "the test target") == (
        "the test target has 2 of 5 values at or near zero (|value| <= 1, 1% of the median |value|), where a "
        "percentage error is undefined"
    )


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


# Binary, positive class "b": P(b) per row, and the probability each row's true class gets.
BINARY_TRUE = ["a", "a", "b", "b"]
BINARY_P_B = [0.1, 0.6, 0.4, 0.8]
BINARY_PROBABILITIES = [[1 - p, p] for p in BINARY_P_B]


def test_binary_probability_metrics_by_hand():
    scores = score("classification", BINARY_TRUE, ["a", "b", "a", "b"], BINARY_PROBABILITIES, ["a", "b"])

    # Positive/negative pairs (0.4, 0.1), (0.4, 0.6), (0.8, 0.1), (0.8, 0.6): 3 of 4 ranked right.
    assert scores["roc_auc"] == pytest.approx(0.75)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.8])))
    assert scores["roc_auc"] == pytest.approx(metrics.roc_auc_score([0, 0, 1, 1], BINARY_P_B))


def test_probability_columns_follow_the_given_class_order():
    # The same probabilities with the columns and classes listed the other way round.
    reversed_columns = [row[::-1] for row in BINARY_PROBABILITIES]

    scores = score("classification", BINARY_TRUE, BINARY_TRUE, reversed_columns, ["b", "a"])

    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.8])))
    assert scores["roc_auc"] == pytest.approx(0.75)


def test_multiclass_probability_metrics_equal_scikit_learn_one_vs_rest_macro():
    rng = np.random.default_rng(0)
    classes = ["x", "y", "z"]
    y_true = rng.choice(classes, size=60)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=60)
    y_pred = np.array(classes)[probabilities.argmax(axis=1)]

    scores = score("classification", y_true, y_pred, probabilities, classes)

    assert scores["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=classes)
    )
    assert scores["log_loss"] == pytest.approx(metrics.log_loss(y_true, probabilities, labels=classes))


def test_multiclass_roc_auc_averages_the_classes_present():
    # Class "z" is absent: no positives, no ROC AUC of its own (scikit-learn's macro average would be NaN).
    # "x" and "y" each rank all 4 of their positive/negative pairs right.
    probabilities = [[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.3, 0.6, 0.1]]

    scores = score("classification", ["x", "y", "x", "y"], ["x", "y", "x", "y"], probabilities, ["x", "y", "z"])

    assert scores["roc_auc"] == pytest.approx((1.0 + 1.0) / 2)
    scores = score("classification", ["x", "y", "y", "x"], ["x", "y", "x", "y"], probabilities, ["x", "y", "z"])
    # "x" (rows 0, 3: 0.5, 0.3) against "y" rows (0.2, 0.6): 2 of 4 pairs; "y" (0.7, 0.1) against (0.3, 0.6): 2 of 4.
    assert scores["roc_auc"] == pytest.approx(0.5)


def test_roc_auc_is_left_out_when_the_test_set_holds_one_class():
    scores = score("classification", ["b", "b"], ["b", "a"], [[0.2, 0.8], [0.7, 0.3]], ["a", "b"])

    assert "roc_auc" not in scores
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.3])))
    json.dumps(scores, allow_nan=False)  # every value a finite number


def test_log_loss_is_left_out_for_a_label_the_model_does_not_know():
    probabilities = [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]

    scores = score("classification", ["a", "b", "new"], ["a", "b", "a"], probabilities, ["a", "b"])

    assert "log_loss" not in scores
    assert scores["roc_auc"] == pytest.approx(1.0)  # "new" is a negative for "b": 0.8 ranks above 0.1 and 0.5


def test_probabilities_must_match_the_labels_and_classes():
    with pytest.raises(ValueError, match=r"probabilities need the classes"):
        score("classification", ["a", "b"], ["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(2, 2\)"):
        score("classification", ["a", "b"], ["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], ["a", "b"])


def test_every_task_scores_its_metrics():
    assert set(score("regression", [1.0, 2.0], [1.0, 2.5])) == set(METRICS_BY_TASK["regression"])
    assert set(score("classification", BINARY_TRUE, BINARY_TRUE, BINARY_PROBABILITIES, ["a", "b"])) == set(
        METRICS_BY_TASK["classification"]
    )
    assert set(score("classification", ["a", "b"], ["a", "b"])) == {"accuracy", "balanced_accuracy", "f1_macro"}
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
        ("mape", 0.1, 0.3, 0.2),
        ("roc_auc", 0.7, 0.5, 0.2),
        ("log_loss", 0.9, 0.6, -0.3),
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

    scored = score_bundle(bundle, test)

    predictions = bundle.predict(test.drop(columns=["price"]))
    assert scored.scores == score("regression", test["price"], predictions)
    assert scored.scores["r2"] > 0.5
    assert scored.predictions.tolist() == predictions.tolist()
    assert scored.probabilities is None


def test_score_bundle_gives_a_classifier_its_probability_metrics(classification_bundle):
    bundle, test = classification_bundle
    features = test.drop(columns=["energy_label"])

    scored = score_bundle(bundle, test)

    expected = score(
        "classification",
        test["energy_label"],
        bundle.predict(features),
        bundle.predict_proba(features),
        bundle.card.classes,
    )
    assert scored.scores == expected
    assert set(scored.scores) == set(METRICS_BY_TASK["classification"])
    assert scored.probabilities.tolist() == bundle.predict_proba(features).tolist()


def test_score_bundle_names_a_missing_feature(regression_bundle):
    bundle, test = regression_bundle

    with pytest.raises(FeatureError, match=r"missing column\(s\) \['rooms'\]"):
        score_bundle(bundle, test.drop(columns=["rooms"]))


def test_improvement_compares_arrays_of_scores_element_by_element():
    assert improvement("r2", np.array([0.5, 0.7]), np.array([0.6, 0.6])).tolist() == pytest.approx([-0.1, 0.1])
    assert improvement("rmse", np.array([1.0, 3.0]), np.array([2.0, 2.0])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("fixture", ["regression_bundle", "classification_bundle"])
def test_scoring_in_chunks_gives_what_scoring_whole_gives(fixture, request, monkeypatch):
    bundle, test = request.getfixturevalue(fixture)
    whole = score_bundle(bundle, test)
    monkeypatch.setattr(scoring, "SCORING_CHUNK_ROWS", 7)  # many chunks, the last one short

    chunked = score_bundle(bundle, test)

    assert len(test) % 7 and chunked.predictions.tolist() == whole.predictions.tolist()
    assert chunked.scores == whole.scores
    if whole.probabilities is not None:
        assert chunked.probabilities.tolist() == whole.probabilities.tolist()


@pytest.mark.parametrize("cores", [1, 3])
def test_chunks_are_scored_on_the_cores_allowed_and_joined_in_row_order(monkeypatch, cores):
    monkeypatch.setattr(joblib, "cpu_count", lambda: cores)
    monkeypatch.setattr(scoring, "SCORING_CHUNK_ROWS", 10)
    features = pd.DataFrame({"x": np.arange(95)})
    threads = set()
    running, most = [0], [0]
    lock = threading.Lock()

    def predict(chunk):
        with lock:
            threads.add(threading.get_ident())
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 if chunk["x"].iloc[0] == 0 else 0.01)  # the first chunk finishes last
        with lock:
            running[0] -= 1
        return chunk["x"].to_numpy() * 2

    predicted = scoring.predict_in_chunks(predict, features)

    assert predicted.tolist() == (np.arange(95) * 2).tolist()
    assert len(threads) <= cores and most[0] == cores  # never more at once than the cores, and that many


@pytest.mark.parametrize(
    "arrays",
    [
        (np.array(["b", "a", "b"]), np.array(["c", "a", "a"], dtype=object)),
        (np.array([1, 0, 1]), np.array([1.0, 0.0, -0.0, np.nan]), np.array(["1", "1.0"], dtype=object)),
        (np.array([1, 1.0, "1", None, True, np.nan], dtype=object), np.array([True, False])),
        (np.array([], dtype=object), np.array(["x"])),
    ],
)
def test_label_codes_are_the_labels_as_text(arrays):
    # As the metrics compare labels: each value's text, so 1 and "1" are one label, 1 and 1.0 two, -0.0 not 0.0.
    labels, codes = scoring.label_codes(*arrays)

    assert labels.tolist() == np.unique(np.concatenate([np.asarray(a).astype(str) for a in arrays])).tolist()
    for values, coded in zip(arrays, codes, strict=True):
        assert labels[coded].tolist() == np.asarray(values).astype(str).tolist()
