"""_common.bootstrap: the paired bootstrap kernel on its own: each metric on resamples equals scikit-learn's on the
resampled rows, and the interval is paired, reproducible and independent of how resamples are chunked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score

from components._common import bootstrap
from components._common.bootstrap import Interval, metric_on_resamples, metric_value, paired_bootstrap


def truth(rows: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 20.0, rows)


def noisy(y: np.ndarray, noise: float, seed: int) -> np.ndarray:
    return y + np.random.default_rng(seed).normal(0.0, noise, len(y))


@pytest.mark.parametrize("seed", range(3))
def test_resampled_r2_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y, predictions = truth(50, seed), noisy(truth(50, seed), 8, seed)
    draws = [rng.integers(0, 50, 50) for _ in range(5)]
    counts = np.stack([np.bincount(d, minlength=50) for d in draws])

    resampled = metric_on_resamples("r2", y, predictions, counts)

    assert resampled == pytest.approx([r2_score(y[d], predictions[d]) for d in draws])


@pytest.mark.parametrize("seed", range(3))
def test_resampled_balanced_accuracy_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c", "rare"], 40, p=[0.4, 0.3, 0.25, 0.05])
    predictions = np.where(rng.random(40) < 0.7, y, rng.choice(["a", "b", "c", "rare", "never"], 40))
    draws = [rng.integers(0, 40, 40) for _ in range(8)]
    counts = np.stack([np.bincount(d, minlength=40) for d in draws])

    resampled = metric_on_resamples("balanced_accuracy", y, predictions, counts)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of a label only ever predicted, then ignores it
        expected = [balanced_accuracy_score(y[d], predictions[d]) for d in draws]
    assert resampled == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_resampled_f1_macro_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c", "rare"], 40, p=[0.4, 0.3, 0.25, 0.05])
    predictions = np.where(rng.random(40) < 0.7, y, rng.choice(["a", "b", "c", "rare"], 40))
    draws = [rng.integers(0, 40, 40) for _ in range(8)]
    counts = np.stack([np.bincount(d, minlength=40) for d in draws])

    resampled = metric_on_resamples("f1_macro", y, predictions, counts)

    assert resampled == pytest.approx([f1_score(y[d], predictions[d], average="macro") for d in draws])


def test_resampled_r2_of_a_constant_truth_follows_scikit_learn():
    y = np.full(10, 3.0)
    counts = np.ones((1, 10))

    assert metric_on_resamples("r2", y, y, counts)[0] == r2_score(y, y) == 1.0
    assert metric_on_resamples("r2", y, y + 1, counts)[0] == r2_score(y, y + 1) == 0.0


def test_a_metric_the_kernel_does_not_compute_is_named():
    with pytest.raises(ValueError, match=r"computes \['r2', 'f1_macro', 'balanced_accuracy'\], not 'rmse'"):
        paired_bootstrap("rmse", truth(), truth(), truth())


def test_the_gain_is_the_metric_on_all_rows_and_the_interval_surrounds_it():
    y = truth()
    better, worse = noisy(y, 5, seed=1), noisy(y, 12, seed=2)

    interval = paired_bootstrap("r2", y, better, worse, samples=500, confidence=0.9, seed=3)

    assert interval.gain == pytest.approx(r2_score(y, better) - r2_score(y, worse))
    assert metric_value("r2", y, better) == pytest.approx(r2_score(y, better))
    assert 0 < interval.low <= interval.gain <= interval.high
    assert (interval.confidence, interval.samples) == (0.9, 500)
    assert paired_bootstrap("r2", y, worse, better, samples=500, confidence=0.9, seed=3).high < 0


def test_pairing_cancels_what_both_share():
    # Both models err alike on every row, one a little more: unpaired, the spread of each score would swamp the
    # difference; paired, every resample sees the same rows for both, so the gain stays positive throughout.
    y = truth()
    shared = noisy(y, 15, seed=1)
    slightly_worse = shared + np.where(shared > y, 0.5, -0.5)

    interval = paired_bootstrap("r2", y, shared, slightly_worse)

    assert interval.low > 0


def test_the_same_seed_gives_the_same_interval_however_resamples_are_chunked(monkeypatch):
    y = truth(rows=300)
    challenger, reference = noisy(y, 9, seed=1), noisy(y, 10, seed=2)
    whole = paired_bootstrap("r2", y, challenger, reference, samples=200, seed=5)

    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK_CELLS", 300 * 7)  # 7 resamples at a time
    chunked = paired_bootstrap("r2", y, challenger, reference, samples=200, seed=5)

    # The same draws in the same order: equal up to the float rounding of a different matrix shape.
    assert (chunked.gain, chunked.low, chunked.high) == pytest.approx((whole.gain, whole.low, whole.high), abs=1e-12)
    assert (chunked.confidence, chunked.samples) == (whole.confidence, whole.samples)
    assert isinstance(whole, Interval)
    assert paired_bootstrap("r2", y, challenger, reference, samples=200, seed=6) != whole


@pytest.mark.parametrize("metric", ["f1_macro", "balanced_accuracy"])
def test_each_set_of_predictions_scores_as_if_alone(metric, monkeypatch):
    # The reference predicts a label the challenger never does ("never"): scored together, that label must not
    # count as one of the challenger's, or its macro F1 would average in a zero.
    rng = np.random.default_rng(4)
    y = rng.choice(["a", "b", "c"], 60)
    challenger = np.where(rng.random(60) < 0.8, y, "a")
    reference = np.where(rng.random(60) < 0.6, y, "never")
    counts = np.stack([np.bincount(rng.integers(0, 60, 60), minlength=60) for _ in range(6)])

    together = bootstrap.ResampledMetric(metric, y, [challenger, reference])(counts)

    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK_CELLS", 1)  # one resample's sums at a time: the same
    for scored, predicted in zip(together, (challenger, reference), strict=True):
        assert scored == pytest.approx(metric_on_resamples(metric, y, predicted, counts), abs=1e-12)


def test_a_resample_per_chunk_gives_the_same_classification_interval(monkeypatch):
    # Large test sets are resampled one resample at a time: the per-row terms are made once, not per chunk.
    rng = np.random.default_rng(2)
    y = rng.choice(["x", "y", "z"], 200)
    challenger, reference = (np.where(rng.random(200) < share, y, "x") for share in (0.8, 0.7))
    whole = paired_bootstrap("f1_macro", y, challenger, reference, samples=60, seed=1)

    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK_CELLS", 200)
    one_at_a_time = paired_bootstrap("f1_macro", y, challenger, reference, samples=60, seed=1)

    assert (one_at_a_time.low, one_at_a_time.high) == pytest.approx((whole.low, whole.high), abs=1e-12)
