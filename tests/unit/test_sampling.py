"""_common.sampling: seeded row keys, proportional counts, and the exact "smallest keys per group" selection, in
memory and over record batches (same rows for any batch size, the second pass when a band misses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from components._common.sampling import (
    DEFAULT_SPREAD,
    SmallestKeys,
    proportional_counts,
    row_keys,
    select_smallest,
    smallest_thresholds,
)


def stream(keys, groups, sizes, counts, batch, **options):
    """The streaming selection over batches of ``batch`` rows, as a mask, and its accumulator."""
    acc = SmallestKeys(sizes, counts, **options)
    while not acc.done:
        for start in range(0, len(keys), batch):
            acc.add(keys[start : start + batch], None if groups is None else groups[start : start + batch])
        acc.end_pass()
    return acc.thresholds.select(keys, groups), acc


# --- row keys ------------------------------------------------------------------------------------------------------


def test_a_rows_key_depends_only_on_its_row_number_and_the_seed():
    whole = row_keys(np.arange(10_000), seed=7)

    assert whole.dtype == np.uint64
    assert len(np.unique(whole)) == len(whole)  # a bijection: no ties between rows
    pieces = np.concatenate([row_keys(np.arange(s, min(s + 333, 10_000)), seed=7) for s in range(0, 10_000, 333)])
    np.testing.assert_array_equal(pieces, whole)
    np.testing.assert_array_equal(row_keys(np.array([9_999, 5, 0], dtype=np.int32), 7), whole[[9_999, 5, 0]])
    assert (row_keys(np.arange(10_000), seed=8) != whole).all()
    assert (row_keys(np.arange(10_000), seed=-1) == row_keys(np.arange(10_000), seed=2**64 - 1)).all()


def test_keys_behave_as_uniform_draws():
    keys = row_keys(np.arange(200_000), seed=0)

    # Each of the 64 bits is set in half the rows, within 6 standard deviations of Binomial(n, 1/2).
    bits = (keys[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    ones = bits.sum(axis=0).astype(np.int64)
    assert (np.abs(ones - 100_000) <= 6 * math.sqrt(200_000 / 4)).all()
    # Consecutive rows are not ordered alike: about half the neighbours increase.
    rises = int((np.diff(keys.astype(np.float64)) > 0).sum())
    assert abs(rises - 100_000) <= 6 * math.sqrt(200_000 / 4)


def splitmix64_outputs(seed: int, count: int) -> list[int]:
    """The reference generator, in plain Python: state += golden; output = finaliser(state)."""
    mask = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    state, outputs = mix(seed & mask), []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        outputs.append(mix(state))
    return outputs


@pytest.mark.parametrize("seed", [0, 42, -3])
def test_keys_are_the_outputs_of_splitmix64_so_a_split_never_changes_between_versions(seed):
    assert row_keys(np.arange(70_000), seed)[[0, 1, 2, 65_535, 65_536, 69_999]].tolist() == [
        splitmix64_outputs(seed, 70_000)[i] for i in (0, 1, 2, 65_535, 65_536, 69_999)
    ]


@pytest.mark.parametrize(
    ("rows", "seed", "error", "message"),
    [
        (np.arange(3.0), 1, TypeError, r"row numbers must be integers, got dtype float64"),
        (np.array([0, -2]), 1, ValueError, r"row numbers must be >= 0, got -2"),
        (np.arange(3), 1.5, TypeError, r"seed must be an integer, got 1.5"),
    ],
)
def test_bad_row_numbers_or_seed_are_refused(rows, seed, error, message):
    with pytest.raises(error, match=message):
        row_keys(rows, seed)


# --- proportional counts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "total", "low", "expected"),
    [
        ([10, 10, 5], 3, 1, [1, 1, 1]),  # shares 1.2, 1.2, 0.6: largest remainder
        ([15, 15], 6, 1, [3, 3]),
        ([100, 2], 6, 1, [5, 1]),  # share 0.12 of the small class: raised to one row, taken from the large one
        ([4, 4, 4, 4, 4], 12, 1, [3, 3, 2, 2, 2]),  # 2.4 each: the ties go to the earlier groups
        ([4, 4, 4, 4, 4], 5, 1, [1, 1, 1, 1, 1]),  # 0.8 each: whole parts of 0 raised to the lower bound
        ([1000], 200, 0, [200]),
        ([7, 0, 3], 5, 0, [4, 0, 1]),  # 3.5 and 1.5: the tie goes to the earlier group
    ],
)
def test_counts_follow_the_shares_and_the_bounds(sizes, total, low, expected):
    sizes_array = np.array(sizes)
    high = np.maximum(sizes_array - low, 0)

    counts = proportional_counts(sizes, total, low=low, high=high)

    assert counts.tolist() == expected


def test_counts_are_within_one_row_of_each_share_and_match_scikit_learn_without_ties():
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(300):
        sizes = rng.integers(2, 400, size=rng.integers(1, 8))
        n = int(sizes.sum())
        fraction = float(rng.uniform(0.05, 0.95))
        total = math.ceil(n * fraction)
        if not len(sizes) <= total <= n - len(sizes):
            continue
        counts = proportional_counts(sizes, total, low=1, high=sizes - 1)
        assert counts.sum() == total and (counts >= 1).all() and (counts <= sizes - 1).all()
        shares = total * sizes / n
        assert (np.abs(counts - shares) < 2).all()
        unbounded = (shares >= 1).all() and (shares <= sizes - 1).all()
        if unbounded:  # the bounds do not bind: largest remainder
            assert (np.abs(counts - shares) < 1).all()
        # scikit-learn's stratified split allocates the train side by largest remainder with random ties (and no
        # bounds: a small class can end up all in test); where the remainders have no ties and the bounds do not
        # bind, it gives the same counts.
        train_remainders = ((n - total) * sizes) % n
        if len(np.unique(train_remainders)) == len(sizes) and unbounded:
            labels = np.repeat(np.arange(len(sizes)), sizes)
            _, test = train_test_split(labels, test_size=fraction, random_state=0, stratify=labels)
            assert np.bincount(test, minlength=len(sizes)).tolist() == counts.tolist()
            compared += 1
    assert compared > 50


@pytest.mark.parametrize(
    ("sizes", "total", "low", "message"),
    [
        ([5, 5], 11, 0, r"11 rows cannot be split over groups bounded by \[0, 0\] \.\. \[5, 5\]"),
        ([5, 5], 1, 1, r"1 rows cannot be split over groups bounded by \[1, 1\]"),
        ([0, 0], 0, 0, r"group sizes must be >= 0 with a positive sum"),
        ([3, 1], 1, 2, r"bounds must satisfy 0 <= low <= high <= size"),
    ],
)
def test_impossible_counts_are_refused(sizes, total, low, message):
    with pytest.raises(ValueError, match=message):
        proportional_counts(sizes, total, low=low)


# --- the selection, in memory and streaming ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "classes", "fraction"), [(25, 3, 0.1), (30, 2, 0.2), (1_000, 5, 0.37), (50_000, 4, 0.2), (3_000, 12, 0.3)]
)
def test_the_selection_has_exactly_the_counts_asked_in_each_group(n, classes, fraction):
    groups = np.random.default_rng(n).integers(0, classes, n)
    sizes = np.bincount(groups, minlength=classes)
    counts = proportional_counts(sizes, math.ceil(n * fraction), low=1, high=sizes - 1)
    keys = row_keys(np.arange(n), seed=3)

    mask = select_smallest(keys, groups, counts)

    assert np.bincount(groups[mask], minlength=classes).tolist() == counts.tolist()
    for g in range(classes):  # the selected keys are the smallest of their group
        assert keys[mask & (groups == g)].max() < keys[~mask & (groups == g)].min()


def test_one_group_can_be_given_as_none_and_counts_of_zero_or_all_are_exact():
    keys = row_keys(np.arange(100), seed=1)
    groups = np.repeat([0, 1, 2], [30, 30, 40])

    assert select_smallest(keys, None, [10]).sum() == 10
    mask = select_smallest(keys, groups, [0, 30, 7])
    assert np.bincount(groups[mask], minlength=3).tolist() == [0, 30, 7]
    streamed, _ = stream(keys, groups, [30, 30, 40], [0, 30, 7], batch=9)
    np.testing.assert_array_equal(streamed, mask)


@pytest.mark.parametrize("batch", [1, 7, 1000, None])
def test_streaming_selects_the_same_rows_as_in_memory_for_any_batch_size(batch):
    n = 6_000
    groups = np.random.default_rng(1).choice(3, size=n, p=[0.6, 0.3, 0.1])
    sizes = np.bincount(groups, minlength=3)
    counts = proportional_counts(sizes, math.ceil(n * 0.2), low=1, high=sizes - 1)
    keys = row_keys(np.arange(n), seed=11)
    expected = select_smallest(keys, groups, counts)

    # exact_up_to=16: the groups go through the band, not the whole-group collection.
    streamed, acc = stream(keys, groups, sizes, counts, batch or n, exact_up_to=16)

    np.testing.assert_array_equal(streamed, expected)
    assert acc.passes == 1
    np.testing.assert_array_equal(acc.thresholds.key, smallest_thresholds(keys, groups, counts).key)


def test_a_band_that_misses_the_threshold_takes_more_passes_and_stays_exact():
    n = 50_000
    groups = np.random.default_rng(2).integers(0, 2, n)
    sizes = np.bincount(groups, minlength=2)
    counts = proportional_counts(sizes, 10_000, low=1, high=sizes - 1)
    keys = row_keys(np.arange(n), seed=5)

    # A band of a millionth of a standard deviation cannot hold the threshold on the first pass.
    streamed, acc = stream(keys, groups, sizes, counts, 4_096, spread=1e-6, exact_up_to=1)

    assert acc.passes > 1
    np.testing.assert_array_equal(streamed, select_smallest(keys, groups, counts))


def test_streaming_memory_grows_with_the_square_root_of_the_rows():
    n, wanted = 1_000_000, 200_000
    keys = row_keys(np.arange(n), seed=9)
    acc = SmallestKeys([n], [wanted])
    for start in range(0, n, 100_000):
        acc.add(keys[start : start + 100_000])

    held = acc.held
    acc.end_pass()

    # The band spans 2 * (z * sqrt(min(r, m - r)) + 2 z^2) ranks, about 7,400 of a million; the keys in it are
    # binomial around that (6 standard deviations of slack, deterministic for this seed).
    band = 2 * (DEFAULT_SPREAD * math.sqrt(wanted) + 2 * DEFAULT_SPREAD**2)
    assert held <= band + 6 * math.sqrt(band)
    assert acc.done and acc.passes == 1
    assert int(acc.thresholds.select(keys).sum()) == wanted


def test_a_pass_that_does_not_feed_every_row_is_refused():
    keys = row_keys(np.arange(100), seed=0)
    acc = SmallestKeys([100], [20])
    acc.add(keys[:60])

    with pytest.raises(ValueError, match=r"the batches of this pass hold \[60\] rows per group, not the sizes \[100\]"):
        acc.end_pass()
    with pytest.raises(RuntimeError, match=r"thresholds are not known yet"):
        _ = acc.thresholds
