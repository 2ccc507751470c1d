"""prepare_data's split decided per row by a seeded hash of the row number: exact stratified counts, rows in file
order, the same rows as the streaming selection over batches, no order bias, and rows that keep their side when
other rows are dropped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from components._common.sampling import SmallestKeys, proportional_counts, row_keys
from components.prepare_data.logic import PreparationError, prepare


def frame_of(labels) -> pd.DataFrame:
    """Distinct rows (``x`` is the row number, so no duplicates) with the given labels."""
    return pd.DataFrame({"x": np.arange(len(labels), dtype="float64"), "label": labels})


@pytest.mark.parametrize(
    ("sizes", "fraction"),
    [
        ([10, 10, 5], 0.1),  # the smallest test set that holds every class
        ([15, 15], 0.2),
        ([4, 4, 4, 4, 4], 0.25),
        ([4, 4, 4, 4, 4], 0.75),
        ([100, 2], 0.05),  # the small class's share (0.1 rows) is raised to one test row
        ([175, 2], 0.8167),  # its share (1.6 rows) is kept below its size: one row stays in train
        ([600, 300, 99, 1_001], 0.37),
    ],
)
def test_each_class_gets_exactly_its_share_of_the_test_rows_and_one_row_on_each_side(sizes, fraction):
    labels = np.repeat([f"c{i}" for i in range(len(sizes))], sizes)
    frame = frame_of(np.random.default_rng(0).permutation(labels))

    prepared = prepare(frame, target="label", task="classification", test_fraction=fraction, seed=4)

    total = math.ceil(sum(sizes) * fraction)
    expected = proportional_counts(sizes, total, low=1, high=np.array(sizes) - 1)
    in_test = prepared.test["label"].value_counts()
    in_train = prepared.train["label"].value_counts()
    assert [int(in_test[f"c{i}"]) for i in range(len(sizes))] == expected.tolist()
    assert len(prepared.test) == total
    assert all(in_train[f"c{i}"] >= 1 for i in range(len(sizes)))


def test_both_sets_keep_the_rows_in_file_order():
    prepared = prepare(frame_of(["a", "b"] * 500), target="label", task="classification", seed=1)

    assert prepared.train["x"].is_monotonic_increasing
    assert prepared.test["x"].is_monotonic_increasing


@pytest.mark.parametrize("batch", [1, 7, 1000, None])
def test_a_streaming_split_over_batches_picks_the_same_rows(batch):
    # Row 3 has no target: it is dropped, but the other rows keep the row numbers they have in the file.
    labels = np.random.default_rng(3).choice(["no", "yes", "maybe"], size=3_000, p=[0.7, 0.2, 0.1]).astype(object)
    labels[3] = None
    frame = frame_of(labels)

    prepared = prepare(frame, target="label", task="classification", test_fraction=0.2, seed=21)

    # The same split computed the streaming way: class sizes from a counting pass, then the thresholds over batches
    # of (row number, class) pairs, then each batch's rows routed by the thresholds.
    rows = np.flatnonzero(pd.notna(labels))
    _, codes = np.unique(labels[rows].astype(str), return_inverse=True)  # sorted classes, as prepare orders them
    sizes = np.bincount(codes)
    counts = proportional_counts(sizes, math.ceil(len(rows) * 0.2), low=1, high=sizes - 1)
    acc = SmallestKeys(sizes, counts, exact_up_to=16)
    step = batch or len(rows)
    while not acc.done:
        for start in range(0, len(rows), step):
            acc.add(row_keys(rows[start : start + step], 21), codes[start : start + step])
        acc.end_pass()
    in_test = np.concatenate(
        [
            acc.thresholds.select(row_keys(rows[start : start + step], 21), codes[start : start + step])
            for start in range(0, len(rows), step)
        ]
    )
    assert prepared.test["x"].tolist() == rows[in_test].astype(float).tolist()
    assert prepared.train["x"].tolist() == rows[~in_test].astype(float).tolist()


def test_the_test_rows_are_spread_evenly_over_the_file():
    n, fraction = 100_000, 0.2
    frame = pd.DataFrame({"x": np.arange(n, dtype="float64"), "y": np.arange(n, dtype="float64")})

    prepared = prepare(frame, target="y", task="regression", test_fraction=fraction, seed=42)

    # The number of test rows in each tenth of the file is hypergeometric (t rows drawn from n, a tenth of them
    # eligible): within 5 of its standard deviations for this fixed seed, if the split does not favour any part.
    t = len(prepared.test)
    sd = math.sqrt(t * 0.1 * 0.9 * (n - t) / (n - 1))
    per_tenth = np.bincount((prepared.test["x"].to_numpy() // (n / 10)).astype(int), minlength=10)
    assert t == 20_000
    assert (np.abs(per_tenth - t / 10) <= 5 * sd).all(), per_tenth


def test_dropping_a_row_moves_at_most_one_other_row_between_train_and_test():
    # One group: the test set is the t smallest keys. Dropping row j leaves every other key as it was, so the new
    # test set (t' smallest of the rest, t' in {t - 1, t}) differs from the old one without j by at most one row.
    n = 2_001
    frame = pd.DataFrame({"x": np.arange(n, dtype="float64"), "y": np.arange(n, dtype="float64")})
    before = prepare(frame, target="y", task="regression", seed=8)
    test_before = set(before.test["x"])

    for dropped in (0, 17, *sorted(test_before)[:3], n - 1):
        with_gap = frame.assign(y=frame["y"].where(frame["x"] != dropped))  # no target: the row is dropped
        after = prepare(with_gap, target="y", task="regression", seed=8)
        moved = (test_before - {dropped}) ^ set(after.test["x"])
        assert len(moved) <= 1, (dropped, moved)


def test_dropping_a_row_changes_each_class_only_by_its_count_change():
    # Per class the test rows are the smallest keys, so before and after one row is dropped they are nested: the
    # rows other than the dropped one that change sides are at most the sum of the per-class count changes, + 1.
    labels = np.random.default_rng(5).choice(["a", "b", "c"], size=1_500).astype(object)
    before = prepare(frame_of(labels), target="label", task="classification", seed=2)
    counts_before = before.test["label"].value_counts()

    for dropped in (0, 500, 1_499):
        gap = labels.copy()
        gap[dropped] = None
        after = prepare(frame_of(gap), target="label", task="classification", seed=2)
        moved = (set(before.test["x"]) - {dropped}) ^ set(after.test["x"])
        change = (after.test["label"].value_counts() - counts_before).abs().sum()
        assert len(moved) <= change + 1, (dropped, len(moved), change)
        for label in ("a", "b", "c"):  # nested within each class
            old = set(before.test.loc[before.test["label"] == label, "x"]) - {dropped}
            new = set(after.test.loc[after.test["label"] == label, "x"])
            assert old <= new or new <= old


def test_a_test_fraction_leaving_no_training_rows_is_named():
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)})

    with pytest.raises(
        PreparationError, match=r"test_fraction 0.95 of 10 rows puts every row in the test set and none in train"
    ):
        prepare(frame, target="y", task="regression", test_fraction=0.95)
