"""prepare_data over record batches: ``prepare_file`` gives the rows, cleaning steps and messages of ``prepare`` on
the whole file for any batch size, including problems that only the last batch shows, and the reference profile
built from the train file equals the one built from the frame."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from components._common.cleaning import CleaningPolicy
from components._common.datasets import read_dataset, write_dataset
from components.prepare_data import logic
from components.prepare_data.logic import PreparationError, prepare, prepare_file
from components.prepare_data.profiling import build_profile_file
from model_bundle import profile as profile_module
from model_bundle.profile import build_profile

BATCH_SIZES = [3, 37, 10_000]  # a few rows, an odd size, more than the file


def mixed_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Numbers, integers with missing values, text with missing values, a class label and a target with gaps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(100, 20, n).round(1),
            "rooms": pd.array(rng.integers(1, 6, n), dtype="float64"),
            "region": rng.choice(["north", "south", "east", "west"], n).astype(object),
            "label": rng.choice(["a", "b", "c"], n),
            "price": rng.normal(1000, 100, n).round(0),
        }
    )
    frame.loc[rng.choice(n, 20, replace=False), "rooms"] = np.nan
    frame.loc[rng.choice(n, 25, replace=False), "region"] = None
    frame.loc[rng.choice(n, 15, replace=False), "price"] = np.nan
    return frame


def split_file(tmp_path, frame: pd.DataFrame, **arguments):
    """``prepare_file`` of ``frame`` written as Parquet: the result, the train frame and the test frame read back."""
    source = tmp_path / "data.parquet"
    write_dataset(frame, source)
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    prepared = prepare_file(source, train, test, **arguments)
    return prepared, read_dataset(train), read_dataset(test)


def assert_same_preparation(prepared, train, test, expected) -> None:
    assert prepared.cleaning == expected.cleaning
    assert prepared.dropped_missing_target == expected.dropped_missing_target
    assert prepared.dropped_duplicates == expected.dropped_duplicates
    assert (prepared.train_rows, prepared.test_rows) == (len(expected.train), len(expected.test))
    pd.testing.assert_frame_equal(train, expected.train)
    pd.testing.assert_frame_equal(test, expected.test)


@pytest.mark.parametrize("batch_rows", BATCH_SIZES)
@pytest.mark.parametrize(("target", "task"), [("price", "regression"), ("label", "classification")])
def test_file_split_is_the_frame_split_for_any_batch_size(tmp_path, batch_rows, target, task):
    frame = mixed_frame()
    frame = pd.concat([frame, frame.iloc[[5, 9, 400]]], ignore_index=True)  # three duplicates, late in the file
    expected = prepare(read_dataset_of(tmp_path, frame), target=target, task=task, seed=11)

    prepared, train, test = split_file(tmp_path, frame, target=target, task=task, seed=11, batch_rows=batch_rows)

    assert expected.dropped_duplicates == 3
    assert_same_preparation(prepared, train, test, expected)
    # The written files are what write_dataset writes for those frames: the same content hash.
    assert prepared.train_info == write_dataset(expected.train, tmp_path / "check.parquet")
    assert prepared.test_info == write_dataset(expected.test, tmp_path / "check.parquet")


def read_dataset_of(tmp_path, frame: pd.DataFrame) -> pd.DataFrame:
    write_dataset(frame, tmp_path / "whole.parquet")
    return read_dataset(tmp_path / "whole.parquet")


@pytest.mark.parametrize("batch_rows", [1, 7, 64, 5_000])
def test_frame_split_does_not_depend_on_the_batch_size(batch_rows):
    frame = mixed_frame(300)
    whole = prepare(frame, target="label", task="classification", seed=3, batch_rows=len(frame))

    batched = prepare(frame, target="label", task="classification", seed=3, batch_rows=batch_rows)

    pd.testing.assert_frame_equal(batched.train, whole.train)
    pd.testing.assert_frame_equal(batched.test, whole.test)
    # The test rows are each class's rows with the smallest seeded keys of their row numbers.
    assert len(whole.test) == math.ceil(0.2 * (len(frame) - whole.dropped_missing_target - whole.dropped_duplicates))


def test_a_duplicate_of_a_row_many_batches_earlier_is_dropped_and_the_first_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(logic, "SPILL_AFTER_ROWS", 50)  # the row hashes go to disk partitions
    frame = mixed_frame(500)
    frame.loc[2, "price"] = 123.0
    late = frame.iloc[[2]].copy()
    frame = pd.concat([frame, late], ignore_index=True)  # row 500 repeats row 2

    prepared, train, test = split_file(tmp_path, frame, target="price", task="regression", seed=1, batch_rows=10)

    assert prepared.dropped_duplicates == 1
    both = pd.concat([train, test])
    assert (both["price"] == 123.0).sum() == 1
    # The first occurrence is kept: the split is the one of the data without the late copy.
    _, alone_train, alone_test = split_file(
        tmp_path / "alone", frame.iloc[:-1], target="price", task="regression", seed=1, batch_rows=10
    )
    pd.testing.assert_frame_equal(train, alone_train)
    pd.testing.assert_frame_equal(test, alone_test)


def test_duplicates_in_text_are_found_across_batches_and_missing_text_is_equal(tmp_path):
    repeated = pd.DataFrame(
        {"city": ["a", None, "b", "a", None, "c", "b"] * 4, "price": [1.0, 2.0, 3.0, 1.0, 2.0, 4.0, 5.0] * 4}
    )
    distinct = pd.DataFrame({"city": [f"d{i}" for i in range(20)], "price": np.arange(20.0)})
    frame = pd.concat([repeated, distinct], ignore_index=True)
    prepared, _, _ = split_file(tmp_path, frame, target="price", task="regression", batch_rows=2)

    assert prepared.dropped_duplicates == len(frame) - len(frame.drop_duplicates())
    assert prepared.train_rows + prepared.test_rows == len(frame.drop_duplicates())


def test_a_class_first_seen_in_the_last_batch_is_in_both_sets(tmp_path):
    frame = mixed_frame(400)
    frame.loc[396:, "label"] = "late"
    expected = prepare(read_dataset_of(tmp_path, frame), target="label", task="classification", seed=2)

    prepared, train, test = split_file(tmp_path, frame, target="label", task="classification", seed=2, batch_rows=30)

    assert "late" in set(train["label"]) and "late" in set(test["label"])
    assert_same_preparation(prepared, train, test, expected)


def test_a_single_row_class_in_the_last_batch_is_refused_as_before(tmp_path):
    frame = mixed_frame(200)
    frame.loc[199, "label"] = "once"
    with pytest.raises(PreparationError) as from_frame:
        prepare(frame, target="label", task="classification")

    with pytest.raises(PreparationError) as from_file:
        split_file(tmp_path, frame, target="label", task="classification", batch_rows=16)

    assert str(from_file.value) == str(from_frame.value)
    assert "['once']" in str(from_file.value)


@pytest.mark.parametrize("outliers", ["clip", "drop"])
def test_outliers_only_in_the_last_batch_are_found(tmp_path, outliers):
    frame = mixed_frame(400)
    frame.loc[398:, "size"] = [5_000.0, -4_000.0]
    policy = CleaningPolicy(outliers=outliers)
    expected = prepare(read_dataset_of(tmp_path, frame), target="price", task="regression", cleaning_policy=policy)

    prepared, train, test = split_file(
        tmp_path, frame, target="price", task="regression", cleaning_policy=policy, batch_rows=50
    )

    assert_same_preparation(prepared, train, test, expected)
    step = next(step for step in prepared.cleaning if step.column == "size")
    assert (step.rows or step.values) >= 2 and "-4000 .. 5000" in step.detail
    # Below FENCE_EXACT_UP_TO labelled values the fences are np.nanquantile's over the labelled rows.
    labelled = frame.loc[frame["price"].notna(), "size"].to_numpy()
    q1, q3 = np.nanquantile(labelled, [0.25, 0.75])
    assert f"outside [{q1 - 3 * (q3 - q1):.6g}, {q3 + 3 * (q3 - q1):.6g}]" in step.detail


def test_a_column_missing_in_the_first_batches_keeps_its_type(tmp_path):
    frame = mixed_frame(300)
    frame["note"] = pd.Series([None] * 200 + ["x", "y"] * 50, dtype=object)
    frame["count"] = pd.array([None] * 200 + list(range(100)), dtype="Int64").astype("float64")
    expected = prepare(read_dataset_of(tmp_path, frame), target="price", task="regression")

    prepared, train, test = split_file(tmp_path, frame, target="price", task="regression", batch_rows=64)

    assert_same_preparation(prepared, train, test, expected)
    assert train["note"].dtype == object and train["count"].dtype == "float64"


def test_coerced_mixed_columns_count_the_same_over_batches(tmp_path):
    frame = mixed_frame(300)
    frame["tax"] = pd.Series([str(v) for v in range(290)] + ["n/a"] * 10, dtype=object)
    policy = CleaningPolicy(coerce_mixed_types=True, outliers="clip")
    expected = prepare(read_dataset_of(tmp_path, frame), target="price", task="regression", cleaning_policy=policy)

    prepared, train, test = split_file(
        tmp_path, frame, target="price", task="regression", cleaning_policy=policy, batch_rows=13
    )

    assert_same_preparation(prepared, train, test, expected)
    coerced = next(step for step in prepared.cleaning if step.policy == "coerce_mixed_types")
    assert coerced.values == 10 and "'n/a'" in coerced.detail


def test_sampled_outlier_fences_are_within_the_rank_error_bound(tmp_path, monkeypatch):
    """Beyond FENCE_EXACT_UP_TO labelled values the fences come from a seeded uniform sample of that many: its
    quartiles are within eps = sqrt(ln(2 / alpha) / (2 n)) in rank of the exact ones (DKW; alpha = 0.001)."""
    limit = 400
    monkeypatch.setattr(logic, "FENCE_EXACT_UP_TO", limit)
    rng = np.random.default_rng(7)
    n = 20_000
    frame = pd.DataFrame({"x": rng.exponential(10, n), "price": rng.normal(0, 1, n)})
    policy = CleaningPolicy(outliers="clip", outlier_factor=1.0)

    details = set()
    for batch_rows in (999, 20_000):
        prepared, _, _ = split_file(
            tmp_path, frame, target="price", task="regression", cleaning_policy=policy, batch_rows=batch_rows
        )
        details.add(next(step.detail for step in prepared.cleaning if step.column == "x"))
    assert len(details) == 1  # the sample is the same for any batch size
    low, high = (float(v) for v in re.match(r"outside \[(\S+), (\S+)\]", details.pop()).groups())
    spread = (high - low) / 3  # low = q1 - spread, high = q3 + spread, q3 - q1 = spread
    q1, q3 = low + spread, high - spread
    eps = math.sqrt(math.log(2 / 0.001) / (2 * limit))
    values = frame["x"].to_numpy()
    assert abs((values <= q1).mean() - 0.25) <= eps + 1e-3
    assert abs((values <= q3).mean() - 0.75) <= eps + 1e-3
    exact_q1 = np.quantile(values, 0.25)
    assert q1 != pytest.approx(exact_q1, rel=1e-9)  # a sample, not the exact quartile


def test_file_errors_are_the_frame_errors(tmp_path):
    frame = mixed_frame(40)
    for arguments in (
        {"target": "missing", "task": "regression"},
        {"target": "price", "task": "regression", "test_fraction": 1.5},
        {"target": "price", "task": "regression", "test_fraction": 0.999},
    ):
        with pytest.raises(PreparationError) as from_frame:
            prepare(read_dataset_of(tmp_path, frame), **arguments)
        with pytest.raises(PreparationError) as from_file:
            split_file(tmp_path, frame, batch_rows=7, **arguments)
        assert str(from_file.value) == str(from_frame.value)
    few = frame.assign(price=[1.0] * 5 + [np.nan] * 35)
    with pytest.raises(PreparationError, match="only 5 usable rows of 40 remain"):
        split_file(tmp_path, few, target="price", task="regression", batch_rows=7)
    with pytest.raises(PreparationError, match="batch_rows"):
        split_file(tmp_path, frame, target="price", task="regression", batch_rows=0)


@pytest.mark.parametrize("sample_rows", [None, 150])
def test_profile_of_the_train_file_is_the_profile_of_the_frame(tmp_path, monkeypatch, sample_rows):
    if sample_rows:  # numeric quantiles from a sample of the present values, drawn as over the whole column
        monkeypatch.setattr(profile_module, "PROFILE_SAMPLE_ROWS", sample_rows)
    frame = mixed_frame(900)
    frame["note"] = pd.Series([None] * 700 + ["x", "y"] * 100, dtype=object)  # missing in the first batches
    path = tmp_path / "train.parquet"
    write_dataset(frame, path)
    expected = build_profile(read_dataset(path), "price", seed=4)

    for batch_rows in (1, 64, 5_000):
        built = build_profile_file(path, "price", seed=4, batch_rows=batch_rows)

        for name, column in expected["columns"].items():
            for statistic in ("mean", "std"):  # merged from per-batch sums: equal up to the last bits
                if statistic in column:
                    assert built["columns"][name].pop(statistic) == pytest.approx(column[statistic], rel=1e-12)
        without = {
            name: {key: value for key, value in column.items() if key not in ("mean", "std")}
            for name, column in expected["columns"].items()
        }
        assert built["columns"] == without
        assert built["sample"] == expected["sample"]
        assert built["rows"] == expected["rows"] and built["target"] == "price"


@pytest.mark.parametrize("batch_rows", [1, 4, 1_000])
def test_duplicates_follow_pandas_equality_of_objects_across_batches(batch_rows):
    values = [1, 1.0, "1", None, "x", True, np.nan, -0.0, 0.0, "x"]
    repeated = pd.DataFrame({"o": pd.Series(values * 3, dtype=object), "y": [1.0, 2.0] * 15})
    distinct = pd.DataFrame({"o": pd.Series([f"d{i}" for i in range(20)], dtype=object), "y": np.arange(20.0)})
    frame = pd.concat([repeated, distinct], ignore_index=True)

    prepared = prepare(frame, target="y", task="regression", batch_rows=batch_rows)

    assert prepared.dropped_duplicates == int(frame.duplicated().sum())


def test_categorical_nullable_and_time_columns_round_trip_through_the_file_path(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "kind": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "at": pd.date_range("2024-01-01", periods=n, freq="h"),
            "count": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "flag": pd.Series(rng.choice([True, False, None], n), dtype=object),
            "name": pd.array(rng.choice(["x", "y", None], n), dtype="string"),
            "y": rng.normal(size=n),
        }
    )
    whole = read_dataset_of(tmp_path, frame)
    for target, task in (("y", "regression"), ("kind", "classification")):
        expected = prepare(whole, target=target, task=task)

        prepared, train, test = split_file(tmp_path, frame, target=target, task=task, batch_rows=37)

        assert_same_preparation(prepared, train, test, expected)
        assert prepared.train_info == write_dataset(expected.train, tmp_path / "check.parquet")
    profiled = build_profile_file(tmp_path / "train.parquet", "kind", batch_rows=50)
    assert profiled["columns"]["kind"] == build_profile(train, "kind")["columns"]["kind"]
    assert profiled["columns"]["kind"]["count"] == len(train)


def test_profile_counts_nan_stored_as_a_value_as_missing(tmp_path, monkeypatch):
    """A Parquet float column may hold NaN as a value rather than a null (written by another tool): pandas reads
    it as missing, so the profile counts it so, and the sampled positions are drawn from the true count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(profile_module, "PROFILE_SAMPLE_ROWS", 50)
    x = np.arange(300, dtype="float64")
    x[::7] = np.nan
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"x": pa.array(x, from_pandas=False), "y": np.arange(300.0)}), path)

    built = build_profile_file(path, "y", batch_rows=64)

    expected = build_profile(read_dataset(path), "y")
    assert built["columns"]["x"]["count"] == 300 - 43
    assert built["columns"]["x"]["quantiles"] == expected["columns"]["x"]["quantiles"]
    assert built["columns"]["x"]["bin_edges"] == expected["columns"]["x"]["bin_edges"]


def test_more_classes_than_a_byte_holds_are_each_split_in_proportion(tmp_path):
    # Each row's class is held as a code while streaming, one byte up to 256 classes and wider past them: 300
    # classes of 4 rows, the last ones first seen in late batches, each put one row in test and three in train.
    labels = [f"c{code:03d}" for code in range(300)]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"size": rng.normal(100, 20, 1200), "label": np.repeat(labels, 4)})

    prepared, train, test = split_file(
        tmp_path, frame, target="label", task="classification", test_fraction=0.25, batch_rows=64
    )

    assert (prepared.train_rows, prepared.test_rows) == (900, 300)
    assert test["label"].value_counts().to_dict() == dict.fromkeys(labels, 1)
    assert train["label"].value_counts().to_dict() == dict.fromkeys(labels, 3)
