"""_common.slices: the one slice rule of the evaluation report and the gate: which slices exist, which have rows
enough to be judged, how each is scored, and where the minimum is set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from components._common.scoring import score
from components._common.slices import (
    MIN_SLICE_ROWS,
    MISSING_SLICE,
    Slice,
    SliceRule,
    score_slices,
    slice_labels,
)
from components.gate_model.policy import GatePolicy


def test_each_value_is_a_slice_and_missing_values_form_their_own():
    test = pd.DataFrame({"city": ["a", None, "b", np.nan, 3], "price": [1.0, 2.0, 3.0, 4.0, 5.0]})

    labels = slice_labels(test, "price", "city")

    assert labels.tolist() == ["a", MISSING_SLICE, "b", MISSING_SLICE, "3"]
    assert labels.name == "city"


def test_no_slice_column_means_no_slices():
    assert slice_labels(pd.DataFrame({"city": ["a"], "price": [1.0]}), "price", "") is None


@pytest.mark.parametrize("column", ["town", "price"])
def test_a_slice_column_that_is_not_a_feature_is_named_with_the_features(column):
    with pytest.raises(
        ValueError,
        match=rf"parameter slice_column: '{column}' is not a feature column of the test set; feature columns are "
        r"\['city'\]",
    ):
        slice_labels(pd.DataFrame({"city": ["a"], "price": [1.0]}), "price", column)


def test_slices_are_listed_largest_first_ties_by_value_and_small_ones_are_not_scored():
    rng = np.random.default_rng(0)
    labels = pd.Series(["b"] * 40 + ["a"] * 40 + ["c"] * 60 + ["tiny"] * 5)
    actual = rng.normal(100, 10, len(labels))
    predicted = actual + rng.normal(0, 5, len(labels))

    slices = score_slices(labels, SliceRule(), "regression", actual, predicted)

    assert [(s.value, s.rows) for s in slices] == [("c", 60), ("a", 40), ("b", 40), ("tiny", 5)]
    assert slices[-1] == Slice("tiny", 5, None)
    c = (labels == "c").to_numpy()
    assert slices[0].scores == pytest.approx(score("regression", actual[c], predicted[c]))
    assert slices[0].scores["r2"] == pytest.approx(r2_score(actual[c], predicted[c]))


def test_the_minimum_decides_which_slices_are_scored():
    labels = pd.Series(["a"] * 40 + ["b"] * 60)
    actual = np.arange(100.0)

    default = score_slices(labels, SliceRule(), "regression", actual, actual + 1)
    stricter = score_slices(labels, SliceRule(50), "regression", actual, actual + 1)

    assert MIN_SLICE_ROWS == 30
    assert [s.scores is not None for s in default] == [True, True]
    assert [s.scores is not None for s in stricter] == [True, False]


def test_a_table_sums_up_the_slices_beyond_its_length_in_one_row():
    labels = pd.Series(["big"] * 35 + ["x"] * 20 + ["y"] * 20 + ["z"] * 15)
    actual = np.arange(90.0)

    slices = score_slices(labels, SliceRule(), "regression", actual, actual * 1.1, max_listed=2)

    # Each of y and z is too small to score; together they are scored as one summary row, named as such.
    assert [(s.value, s.rows) for s in slices] == [("big", 35), ("x", 20), ("(2 other values)", 35)]
    rest = slice(55, 90)
    assert slices[-1].scores == pytest.approx(score("regression", actual[rest], actual[rest] * 1.1))
    assert slices[1].scores is None


def test_classifier_slices_get_their_probability_metrics():
    rng = np.random.default_rng(1)
    labels = pd.Series(["p"] * 50 + ["q"] * 50)
    actual = rng.choice(["no", "yes"], 100)
    probabilities = rng.dirichlet([1, 1], 100)
    predicted = np.array(["no", "yes"])[probabilities.argmax(axis=1)]

    slices = score_slices(labels, SliceRule(), "classification", actual, predicted, probabilities, ["no", "yes"])

    p = slice(0, 50)
    assert slices[0].scores == pytest.approx(
        score("classification", actual[p], predicted[p], probabilities[p], ["no", "yes"])
    )
    assert "roc_auc" in slices[0].scores


def test_evaluate_reads_the_minimum_from_gate_policy_as_the_gate_does(capsys):
    gate_policy = {"min_slice_rows": 50.0, "ties": "promote_challenger", "confidence": 0.9}  # KFP: floats

    rule = SliceRule.from_gate_policy(gate_policy)

    assert rule == SliceRule(50) == GatePolicy.from_mapping(gate_policy).slice_rule
    assert SliceRule.from_gate_policy({}) == SliceRule.from_gate_policy(None) == GatePolicy().slice_rule
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, r"gate_policy\['min_slice_rows'\] must be at least 1, got 0"), (2.5, r"gate_policy\['min_slice_rows'\]")],
)
def test_a_bad_minimum_is_named_as_the_gate_policy_key(value, message):
    with pytest.raises(ValueError, match=message):
        SliceRule.from_gate_policy({"min_slice_rows": value})
