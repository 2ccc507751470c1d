"""prepare_data: the cleaning policy (with counts, and the parameters it replaces), stratified and deterministic
splits, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components._common.cleaning import CleaningPolicy, read_cleaning_policy
from components._common.datasets import read_dataset
from components.ingest_data.logic import ingest_source
from components.prepare_data.logic import PreparationError, prepare, prepare_file
from components.prepare_data.report import render_cleaning_report
from components.train_model.logic import train_model_directory


def labelled_frame(labels: list[str]) -> pd.DataFrame:
    """Distinct rows (so no duplicates are dropped) with the given class labels."""
    return pd.DataFrame({"x": np.arange(len(labels), dtype="float64"), "label": labels})


def test_drops_rows_without_target_and_duplicates_and_counts_them():
    frame = pd.DataFrame(
        {
            "x": [float(i) for i in range(20)] + [0.0, 1.0] + [30.0, 31.0, 32.0],
            "price": [float(i) * 10 for i in range(20)] + [0.0, 10.0] + [np.nan, np.nan, np.nan],
        }
    )

    prepared = prepare(frame, target="price", task="regression", seed=0)

    assert prepared.dropped_missing_target == 3
    assert prepared.dropped_duplicates == 2
    assert len(prepared.train) + len(prepared.test) == 20
    both = pd.concat([prepared.train, prepared.test])
    assert both["price"].notna().all()
    assert not both.duplicated().any()


def test_duplicates_are_kept_when_asked():
    frame = pd.DataFrame(
        {"x": [1.0] * 5 + [float(i) for i in range(10)], "y": [2.0] * 5 + [float(i) for i in range(10)]}
    )

    prepared = prepare(frame, target="y", task="regression", cleaning_policy=CleaningPolicy(drop_duplicates=False))

    assert prepared.dropped_duplicates == 0
    assert len(prepared.train) + len(prepared.test) == 15


def test_split_sizes_follow_test_fraction(houses):
    prepared = prepare(houses, target="price", task="regression", test_fraction=0.25, seed=3)

    total = len(prepared.train) + len(prepared.test)
    assert total == len(houses) - prepared.dropped_missing_target - prepared.dropped_duplicates
    assert len(prepared.test) == pytest.approx(0.25 * total, abs=1)


def test_stratified_split_keeps_class_proportions(houses):
    prepared = prepare(houses, target="energy_label", task="classification", test_fraction=0.2, seed=5)

    overall = pd.concat([prepared.train, prepared.test])["energy_label"].value_counts()
    in_test = prepared.test["energy_label"].value_counts()
    in_train = prepared.train["energy_label"].value_counts()
    assert set(in_test.index) == set(overall.index) == set(in_train.index)
    for label, count in overall.items():
        # Stratification puts each class in the test set in proportion, up to rounding.
        assert abs(in_test[label] - 0.2 * count) <= 1, (label, in_test[label], count)


def test_split_is_deterministic_for_a_seed(houses):
    first = prepare(houses, target="price", task="regression", seed=9)
    second = prepare(houses, target="price", task="regression", seed=9)
    other = prepare(houses, target="price", task="regression", seed=10)

    pd.testing.assert_frame_equal(first.train, second.train)
    pd.testing.assert_frame_equal(first.test, second.test)
    assert not first.test.equals(other.test)


def test_split_frames_have_a_fresh_index(houses):
    prepared = prepare(houses, target="price", task="regression", seed=1)

    assert prepared.train.index.equals(pd.RangeIndex(len(prepared.train)))
    assert prepared.test.index.equals(pd.RangeIndex(len(prepared.test)))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_bad_test_fraction_is_named(houses, fraction):
    with pytest.raises(PreparationError, match=r"parameter test_fraction must be between 0 and 1"):
        prepare(houses, target="price", task="regression", test_fraction=fraction)


def test_missing_target_is_named():
    with pytest.raises(PreparationError, match=r"target column 'price' not found; columns are \['x', 'label'\]"):
        prepare(labelled_frame(["a", "b"] * 10), target="price", task="regression")


def test_unknown_task_is_named(houses):
    with pytest.raises(ValueError, match=r"task must be one of .*got 'ranking'"):
        prepare(houses, target="price", task="ranking")


def test_class_with_a_single_row_is_named():
    frame = labelled_frame(["A"] * 10 + ["B"] * 10 + ["G"])

    with pytest.raises(PreparationError, match=r"class\(es\) \['G'\] of target 'label' have a single row"):
        prepare(frame, target="label", task="classification")


def test_numeric_class_with_a_single_row_suggests_regression():
    # task=auto classifies up to 20 integer values: on a small file a quantity (rooms, a count) lands here.
    frame = labelled_frame([2] * 10 + [3] * 10 + [7])

    with pytest.raises(PreparationError, match=r"class\(es\) \['7'\] .*if the target is a quantity.*task='regression'"):
        prepare(frame, target="label", task="classification")
    with pytest.raises(PreparationError) as text_labels:
        prepare(labelled_frame(["A"] * 10 + ["B"] * 10 + ["G"]), target="label", task="classification")
    assert "regression" not in str(text_labels.value)


def test_too_few_rows_is_reported_with_the_counts():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0], "y": [1.0, 2.0, 3.0, 3.0, np.nan, 5.0, 6.0]})

    with pytest.raises(
        PreparationError,
        match=r"only 5 usable rows of 7 remain after cleaning \(1 by missing_target, 1 by duplicates\) on target "
        r"'y'; at least 10",
    ):
        prepare(frame, target="y", task="regression")


@pytest.mark.parametrize("fraction", [0.05, 0.9])
def test_split_that_cannot_hold_every_class_names_test_fraction(fraction):
    frame = labelled_frame(list("ABCDE") * 4)  # 20 rows, 5 classes

    with pytest.raises(PreparationError, match=rf"test_fraction {fraction} of 20 rows cannot hold all 5 classes"):
        prepare(frame, target="label", task="classification", test_fraction=fraction)


def test_train_side_too_small_for_every_class_names_test_fraction():
    # 20 rows, 5 classes, test_fraction 0.76: scikit-learn puts ceil(15.2) = 16 rows in test, leaving 4 train rows
    # for 5 classes. The step must refuse with its own message, not let scikit-learn fail.
    frame = labelled_frame(list("ABCDE") * 4)

    with pytest.raises(PreparationError, match=r"test_fraction 0\.76 of 20 rows cannot hold all 5 classes"):
        prepare(frame, target="label", task="classification", test_fraction=0.76)


def test_test_set_exactly_large_enough_for_every_class_is_accepted():
    # 25 rows, 3 classes, test_fraction 0.1: scikit-learn puts ceil(2.5) = 3 rows in test, one per class.
    frame = labelled_frame(["A"] * 10 + ["B"] * 10 + ["C"] * 5)

    prepared = prepare(frame, target="label", task="classification", test_fraction=0.1, seed=0)

    assert sorted(prepared.test["label"]) == ["A", "B", "C"]


def test_numeric_class_labels_are_stratified():
    frame = labelled_frame([0, 1] * 15)

    prepared = prepare(frame, target="label", task="classification", test_fraction=0.2, seed=2)

    assert prepared.test["label"].value_counts().to_dict() == {0: 3, 1: 3}


def test_outliers_are_clipped_or_dropped_and_logged():
    sizes = [float(s) for s in range(50, 80)] + [5000.0]
    frame = pd.DataFrame({"size": sizes, "price": [s * 10 for s in range(len(sizes))]})

    clipped = prepare(frame, "price", "regression", cleaning_policy=CleaningPolicy(outliers="clip"))
    dropped = prepare(frame, "price", "regression", cleaning_policy=CleaningPolicy(outliers="drop"))

    both = pd.concat([clipped.train, clipped.test])
    assert len(both) == 31 and both["size"].max() < 200
    assert any(s.policy == "outliers" and s.column == "size" and s.values == 1 for s in clipped.cleaning)
    assert len(dropped.train) + len(dropped.test) == 30
    assert 5000.0 not in pd.concat([dropped.train, dropped.test])["size"].tolist()
    report = render_cleaning_report(dropped)
    assert "| outliers | drop | size | 1 | 0 |" in report
    with pytest.raises(
        ValueError, match=r"parameter cleaning_policy\['outliers'\] must be one of \['keep', 'clip', 'drop'\]"
    ):
        read_cleaning_policy({"outliers": "trim"})


def test_mixed_columns_are_coerced_only_when_asked():
    frame = pd.DataFrame(
        {"size": [str(s) for s in range(50, 69)] + ["1e999", "big"], "price": [float(p) for p in range(21)]}
    )

    kept = prepare(frame, "price", "regression")
    coerced = prepare(frame, "price", "regression", cleaning_policy=CleaningPolicy(coerce_mixed_types=True))

    assert pd.concat([kept.train, kept.test])["size"].dtype == object
    sizes = pd.concat([coerced.train, coerced.test])["size"]
    assert sizes.isna().sum() == 2 and np.isfinite(sizes.dropna()).all()  # text and infinity both become missing
    step = next(s for s in coerced.cleaning if s.policy == "coerce_mixed_types")
    assert (step.column, step.values) == ("size", 2) and "'big'" in step.detail


# --- the cleaning policy, and the parameters it replaces ---------------------------------------------------------


def test_the_cleaning_policy_defaults_drop_duplicates_and_keep_the_rest():
    assert read_cleaning_policy({}) == CleaningPolicy(
        drop_duplicates=True, coerce_mixed_types=False, outliers="keep", outlier_factor=3.0
    )
    assert read_cleaning_policy({"outlier_factor": 2}).outlier_factor == 2.0  # KFP may pass a whole number


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"outliers": "trim"}, r"cleaning_policy\['outliers'\] must be one of \['keep', 'clip', 'drop'\], got 'trim'"),
        ({"outlier_factor": 0.0}, r"cleaning_policy\['outlier_factor'\] must be a positive number, got 0.0"),
        ({"outlier_factor": float("nan")}, r"cleaning_policy\['outlier_factor'\] must be a positive number, got nan"),
        ({"drop_duplicates": "yes"}, r"cleaning_policy\['drop_duplicates'\] must be a bool, got 'yes'"),
        ({"dedupe": True}, r"cleaning_policy has unknown key\(s\) \['dedupe'\]"),
    ],
)
def test_a_bad_cleaning_policy_is_refused_naming_the_key(policy, message):
    with pytest.raises(ValueError, match=message):
        read_cleaning_policy(policy)


def test_the_deprecated_cleaning_parameters_still_work_and_name_the_new_keys(capsys):
    policy = read_cleaning_policy(
        {"outlier_factor": 2.0}, drop_duplicates=False, coerce_mixed_types=True, outliers="clip"
    )

    assert policy == CleaningPolicy(drop_duplicates=False, coerce_mixed_types=True, outliers="clip", outlier_factor=2.0)
    err = capsys.readouterr().err
    for key in ("drop_duplicates", "coerce_mixed_types", "outliers"):
        assert f"parameter {key} will be removed in the next release; set cleaning_policy[{key!r}] instead" in err
    assert read_cleaning_policy({}, outlier_factor=1.5).outlier_factor == 1.5


def test_a_deprecated_cleaning_parameter_contradicting_the_policy_is_refused():
    with pytest.raises(ValueError, match=r"parameter outliers \(deprecated\) sets 'outliers' to 'drop' but"):
        read_cleaning_policy({"outliers": "clip"}, outliers="drop")


def test_a_label_column_with_a_missing_value_trains_classes_named_by_the_integers(tmp_path):
    # A CSV label column with an empty cell is read as floats (0.0, 1.0): the model's classes must still be 0 and 1,
    # as without the empty cell, or its served labels change from one run to the next.
    rng = np.random.default_rng(0)
    rows = ["x,label", *(f"{x:.3f},{int(x > 0)}" for x in rng.normal(size=60)), "0.5,"]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    ingest_source(str(tmp_path / "data.csv"), tmp_path / "data.parquet")
    assert read_dataset(tmp_path / "data.parquet")["label"].dtype == "float64"

    prepare_file(tmp_path / "data.parquet", tmp_path / "train", tmp_path / "test", "label", "classification")
    (tmp_path / "schema.json").write_text(json.dumps({"columns": []}))
    card = train_model_directory(
        tmp_path / "train",
        {"schema.json": tmp_path / "schema.json"},
        tmp_path / "model",
        target="label",
        task="classification",
        candidate={"model_type": "linear"},
    )

    assert card.classes == ["0", "1"]
    assert read_dataset(tmp_path / "train")["label"].dtype == "int64"
    assert read_dataset(tmp_path / "test")["label"].dtype == "int64"
    frame = read_dataset(tmp_path / "data.parquet")
    assert prepare(frame, "label", "classification").train["label"].dtype == "int64"  # the same in memory
    assert prepare(frame, "label", "regression").train["label"].dtype == "float64"  # a quantity stays float
    halves = frame.assign(label=frame["label"] + 0.5)
    assert prepare(halves, "label", "classification").train["label"].dtype == "float64"  # not whole numbers
