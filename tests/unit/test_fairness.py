"""components._common.fairness: groups, who is judged, and every number checked against fairlearn called directly."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error

from components._common.fairness import (
    GAP_METRICS,
    HIGHER_IS_FAIRER,
    MIN_GROUP_ROWS,
    MISSING_GROUP,
    assess,
    check_sensitive_columns,
    class_rows,
    comparable_groups,
    group_labels,
    positive_label,
)
from model_bundle.groups import GroupCoder, group_name, top_groups


def biased_classification(seed=0, rows=600):
    """Labels 'yes'/'no'; the model is right 85% of the time for group a, and for group b it misses most true
    'yes' (its 'yes' labels were made systematically worse); group c is too small to judge and all 'yes'."""
    rng = np.random.default_rng(seed)
    groups = np.array(["a"] * (rows // 2) + ["b"] * (rows // 2 - 10) + ["c"] * 10)
    y_true = rng.choice(["no", "yes"], rows)
    flip = rng.random(rows) < 0.15
    y_pred = np.where(flip, np.where(y_true == "yes", "no", "yes"), y_true)
    missed = (groups == "b") & (y_true == "yes") & (rng.random(rows) < 0.7)
    y_pred[missed] = "no"
    y_pred[groups == "c"] = "yes"
    return y_true, y_pred, pd.Series(groups, name="sex")


def binary(labels, positive="yes"):
    return (np.asarray(labels) == positive).astype(int)


def test_check_sensitive_columns_accepts_any_column_including_excluded_ones():
    assert check_sensitive_columns(["sex", "age_band"], ["age", "sex", "age_band", "price"], target="price") == [
        "sex",
        "age_band",
    ]
    assert check_sensitive_columns([], ["a"]) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["sex", "race", "zip"], r"unknown column\(s\) \['race', 'zip'\]"),
        (["price"], "'price' is the target"),
        ("sex", "must be a list of column names"),
        (["sex", ""], "must be a list of column names"),
        (["sex", 3], "must be a list of column names"),
        (["sex", "sex"], r"names \['sex'\] more than once"),
    ],
)
def test_check_sensitive_columns_refuses_naming_the_problem(value, message):
    with pytest.raises(ValueError, match="parameter sensitive_columns") as error:
        check_sensitive_columns(value, ["sex", "age", "price"], target="price")
    assert error.match(message)


def test_group_labels_text_with_missing_values_as_their_own_group():
    frame = pd.DataFrame({"sex": ["f", None, "m", np.nan], "n": [1.0, 2.0, np.nan, 1.0]})
    assert group_labels(frame, "sex").tolist() == ["f", MISSING_GROUP, "m", MISSING_GROUP]
    labels = group_labels(frame, "n")
    assert labels.tolist() == ["1", "2", MISSING_GROUP, "1"] and labels.name == "n"
    with pytest.raises(KeyError, match="'race'"):
        group_labels(frame, "race")


def test_groups_are_named_as_the_model_server_names_them():
    """A group in the evaluation report, the gate and monitoring is the group the server's per-group metrics carry
    (the card's sensitive_groups, model_bundle.groups): whole floats, integers and booleans alike."""
    frame = pd.DataFrame(
        {
            "band": [3.0, 2.5, np.nan, 3.0],
            "rooms": pd.array([3, 2, None, 3], dtype="Int64"),
            "flag": pd.array([True, False, None, True], dtype="boolean"),
        }
    )
    # Four rows: the server names values one by one; twenty: through pandas.factorize (GroupCoder.codes).
    for rows in (frame, pd.concat([frame] * 5, ignore_index=True)):
        for column in rows.columns:
            coder = GroupCoder(top_groups(rows, [column])[column])
            served = [coder.labels[code] for code in coder.codes(rows[column], len(rows))]
            assert group_labels(rows, column).tolist() == served
            assert served == [group_name(value) or MISSING_GROUP for value in rows[column]]
    assert group_labels(frame, "band").tolist() == ["3", "2.5", MISSING_GROUP, "3"]
    assert group_labels(frame, "flag").tolist() == ["True", "False", MISSING_GROUP, "True"]


def test_positive_label_is_a_binary_classifiers_second_class():
    assert positive_label("classification", ["no", "yes"]) == "yes"
    assert positive_label("classification", [0, 1]) == "1"
    assert positive_label("classification", ["a", "b", "c"]) is None
    assert positive_label("regression", None) is None


def test_binary_classifier_numbers_are_fairlearns():
    y_true, y_pred, groups = biased_classification()
    result = assess("classification", y_true, y_pred, groups, positive_label="yes")

    assert result.column == "sex"
    assert [(group.value, group.rows, group.judged) for group in result.groups] == [
        ("a", 300, True),
        ("b", 290, True),
        ("c", 10, False),
    ]
    assert result.groups[2].metrics == {}
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=binary(y_true),
        y_pred=binary(y_pred),
        sensitive_features=groups,
    )
    accuracy = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    for group in result.groups[:2]:
        expected = frame.by_group.loc[group.value].to_dict() | {"accuracy": accuracy.by_group[group.value]}
        assert group.metrics == pytest.approx(expected)
    assert result.overall == pytest.approx(frame.overall.to_dict() | {"accuracy": accuracy.overall})

    # The gaps are fairlearn's over the judged groups only: the small all-'yes' group c does not count.
    judged = (groups != "c").to_numpy()
    args = (binary(y_true)[judged], binary(y_pred)[judged])
    features = groups[judged]
    assert result.gaps == pytest.approx(
        {
            "demographic_parity_difference": demographic_parity_difference(*args, sensitive_features=features),
            "demographic_parity_ratio": demographic_parity_ratio(*args, sensitive_features=features),
            "equalized_odds_difference": equalized_odds_difference(*args, sensitive_features=features),
        }
    )
    assert set(result.gaps) == set(GAP_METRICS["classification"])
    assert (
        demographic_parity_difference(binary(y_true), binary(y_pred), sensitive_features=groups)
        > result.gaps["demographic_parity_difference"]
    )
    # The degraded group: selected least, its true 'yes' missed most; the gap shows it.
    assert result.gaps["equalized_odds_difference"] > 0.5
    assert result.gaps["demographic_parity_difference"] > 0.25
    assert result.worst_group == {
        "demographic_parity_difference": "b",
        "demographic_parity_ratio": "b",
        "equalized_odds_difference": "b",
    }
    assert result.judged_groups == ["a", "b"]


def test_a_model_treating_groups_alike_has_small_gaps():
    rng = np.random.default_rng(1)
    groups = pd.Series(rng.choice(["a", "b"], 2000), name="sex")
    y_true = rng.choice(["no", "yes"], 2000)
    y_pred = np.where(rng.random(2000) < 0.1, np.where(y_true == "yes", "no", "yes"), y_true)
    result = assess("classification", y_true, y_pred, groups, positive_label="yes")
    assert result.gaps["demographic_parity_difference"] < 0.06
    assert result.gaps["equalized_odds_difference"] < 0.06
    assert result.gaps["demographic_parity_ratio"] > 0.9


def test_multiclass_each_class_in_turn_the_worst_class_decides():
    rng = np.random.default_rng(2)
    rows = 900
    groups = pd.Series(rng.choice(["a", "b", "c"], rows), name="region")
    y_true = rng.choice(["x", "y", "z"], rows)
    y_pred = y_true.copy()
    y_pred[(groups == "b").to_numpy() & (y_true == "z")] = "y"  # b's z are called y
    result = assess("classification", y_true, y_pred, groups)

    differences, ratios, odds = {}, {}, {}
    for label in ("x", "y", "z"):
        args = (binary(y_true, label), binary(y_pred, label))
        differences[label] = demographic_parity_difference(*args, sensitive_features=groups)
        ratios[label] = demographic_parity_ratio(*args, sensitive_features=groups)
        odds[label] = equalized_odds_difference(*args, sensitive_features=groups)
        frame = MetricFrame(metrics=selection_rate, y_true=args[0], y_pred=args[1], sensitive_features=groups)
        for group in result.groups:
            assert group.metrics[f"selection_rate[{label}]"] == pytest.approx(frame.by_group[group.value])
    assert result.gaps == pytest.approx(
        {
            "demographic_parity_difference": max(differences.values()),
            "demographic_parity_ratio": min(ratios.values()),
            "equalized_odds_difference": max(odds.values()),
        }
    )
    # Class z: b selects it least and finds none of its true z.
    assert result.worst_group["equalized_odds_difference"] == "b"
    assert result.worst_group["demographic_parity_ratio"] == "b"


def test_regression_relative_gaps_read_the_same_on_any_scale():
    rng = np.random.default_rng(3)
    rows = 1000
    groups = pd.Series(rng.choice(["north", "south", "islands"], rows, p=[0.6, 0.38, 0.02]), name="region")
    y_true = rng.normal(200_000, 50_000, rows)
    noise = rng.normal(0, 10_000, rows) * np.where(groups == "south", 3.0, 1.0)
    y_pred = y_true + noise
    result = assess("regression", y_true, y_pred, groups)

    assert [group.value for group in result.groups] == ["north", "south", "islands"]
    assert not result.groups[2].judged and result.groups[2].metrics == {}
    frame = MetricFrame(
        metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    for group in result.groups[:2]:
        assert group.metrics == pytest.approx(frame.by_group.loc[group.value].to_dict())
    assert result.overall == pytest.approx(frame.overall.to_dict())
    judged = (groups != "islands").to_numpy()
    among = MetricFrame(
        metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error},
        y_true=y_true[judged],
        y_pred=y_pred[judged],
        sensitive_features=groups[judged],
    )
    assert result.gaps == pytest.approx(
        {
            "mae_relative_gap": among.difference()["mae"] / among.overall["mae"],
            "rmse_relative_gap": among.difference()["rmse"] / among.overall["rmse"],
        }
    )
    assert set(result.gaps) == set(GAP_METRICS["regression"])
    assert result.gaps["mae_relative_gap"] > 1.0  # the south's error is three times the north's
    assert result.worst_group == {"mae_relative_gap": "south", "rmse_relative_gap": "south"}

    in_thousands = assess("regression", y_true / 1000, y_pred / 1000, groups)
    assert in_thousands.gaps == pytest.approx(result.gaps)


def test_exact_predictions_have_no_regression_gap():
    groups = pd.Series(["a"] * 40 + ["b"] * 40, name="g")
    values = np.arange(80.0)
    assert assess("regression", values, values, groups).gaps == {"mae_relative_gap": 0.0, "rmse_relative_gap": 0.0}


def test_no_gap_without_two_judged_groups():
    y_true, y_pred, groups = biased_classification()
    result = assess("classification", y_true, y_pred, groups, positive_label="yes", min_group_rows=295)
    assert [group.judged for group in result.groups] == [True, False, False]
    assert result.gaps == {} and result.worst_group == {}
    # Its true and false positive rates would need 295 rows of each label too.
    assert set(result.groups[0].metrics) == {"accuracy", "selection_rate"}


def test_a_rate_on_fewer_rows_than_a_group_needs_is_not_read_nor_compared():
    groups = pd.Series(["a"] * 80 + ["b"] * 80 + ["c"] * 80, name="g")
    # b holds 10 true 'yes' (too few for a true positive rate), 70 'no'; a and c 40 of each.
    y_true = np.array(["yes", "no"] * 40 + ["yes"] * 10 + ["no"] * 70 + ["yes", "no"] * 40)
    y_pred = np.array(["yes", "no"] * 40 + ["no"] * 10 + ["yes"] * 14 + ["no"] * 56 + ["no"] * 80)
    result = assess("classification", y_true, y_pred, groups, positive_label="yes")

    b = result.groups[1]
    assert "true_positive_rate" not in b.metrics and b.metrics["false_positive_rate"] == pytest.approx(0.2)
    rows = class_rows(y_true, groups, ["a", "b", "c"])
    assert rows["b"] == {"yes": 10, "no": 70}
    assert comparable_groups(rows, ["a", "b", "c"], "yes") == (["a", "b", "c"], ["a", "c"])
    both = (groups != "b").to_numpy()
    assert result.gaps["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(binary(y_true)[both], binary(y_pred)[both], sensitive_features=groups[both])
    )
    assert result.gaps["equalized_odds_difference"] == pytest.approx(1.0)  # a finds every 'yes', c none
    assert result.worst_group["equalized_odds_difference"] == "c"
    # Selection rates need no label: every judged group is compared (a 0.5, b 0.175, c 0).
    assert result.gaps["demographic_parity_difference"] == pytest.approx(0.5)


def test_multiclass_compares_a_class_only_in_groups_holding_enough_of_it():
    rng = np.random.default_rng(5)
    rows = 1200
    groups = pd.Series(rng.choice(["a", "b"], rows), name="g")
    # 'rare' is 1% of the rows: a handful per group, where one group's rate is 0 and the other's 1 by chance.
    y_true = rng.choice(["x", "y", "rare"], rows, p=[0.6, 0.39, 0.01])
    y_pred = np.where(rng.random(rows) < 0.9, y_true, rng.choice(["x", "y", "rare"], rows))
    result = assess("classification", y_true, y_pred, groups)

    judged = ["a", "b"] if (groups == "a").sum() >= (groups == "b").sum() else ["b", "a"]
    rows = class_rows(y_true, groups, judged)
    assert comparable_groups(rows, judged, "rare", multiclass=True) == ([], [])
    assert comparable_groups(rows, judged, "x", multiclass=True) == (judged, judged)
    odds, differences = [], []
    for label in ("x", "y"):
        args = (binary(y_true, label), binary(y_pred, label))
        odds.append(equalized_odds_difference(*args, sensitive_features=groups))
        differences.append(demographic_parity_difference(*args, sensitive_features=groups))
    assert result.gaps["equalized_odds_difference"] == pytest.approx(max(odds))
    assert result.gaps["demographic_parity_difference"] == pytest.approx(max(differences))
    assert result.gaps["equalized_odds_difference"] < 0.1
    assert "true_positive_rate[rare]" not in result.groups[0].metrics
    assert "selection_rate[rare]" in result.groups[0].metrics  # shown, on every row of the group


def test_undefined_ratio_is_left_out_not_nan():
    groups = pd.Series(["a"] * 40 + ["b"] * 40, name="g")
    y_true = np.array(["yes", "no"] * 40)
    result = assess("classification", y_true, np.array(["no"] * 80), groups, positive_label="yes")
    assert "demographic_parity_ratio" not in result.gaps
    assert result.gaps["demographic_parity_difference"] == 0.0


def test_bad_input_is_named():
    groups = pd.Series(["a", "b"], name="g")
    with pytest.raises(ValueError, match="2 true values, 3 predictions and 2 group labels"):
        assess("regression", [1.0, 2.0], [1.0, 2.0, 3.0], groups)
    with pytest.raises(ValueError, match="min_group_rows must be at least 1"):
        assess("regression", [1.0, 2.0], [1.0, 2.0], groups, min_group_rows=0)
    with pytest.raises(ValueError, match="task must be one of"):
        assess("ranking", [1.0, 2.0], [1.0, 2.0], groups)


def test_every_gap_metric_says_which_way_is_fairer():
    assert MIN_GROUP_ROWS == 30
    assert {name for names in GAP_METRICS.values() for name in names} == set(HIGHER_IS_FAIRER)
