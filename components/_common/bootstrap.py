"""The paired bootstrap: a percentile confidence interval of one set of predictions' gain over another on the same
rows, with r2, macro F1 and balanced accuracy computed on every resample at once from weighted sums.

A plain statistics kernel (numbers in, an Interval out): the gate compares a challenger with the champion and with
the constant baseline through it, and any other comparison of two models on shared rows can.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from components._common.scoring import improvement

# Resampled rows held in memory at once (8 bytes each): bounds the bootstrap's memory on large test sets.
BOOTSTRAP_CHUNK_CELLS = 4_000_000
RESAMPLED_METRICS = ("r2", "f1_macro", "balanced_accuracy")


@dataclass(frozen=True)
class Interval:
    """The gain of one set of predictions over a reference on one metric, and its bootstrap confidence interval."""

    gain: float  # on all rows: challenger minus reference in the metric's direction; > 0: the challenger is better
    low: float
    high: float
    confidence: float
    samples: int


def paired_bootstrap(
    metric: str,
    y_true: np.ndarray,
    challenger: np.ndarray,
    reference: np.ndarray,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval of ``metric``'s gain of ``challenger`` over ``reference`` (e.g. the champion's
    predictions, or the constant baseline's), both rescored on the same ``samples`` resamples of the rows.

    Pairing (one resample, both sets of predictions) cancels what the two share, such as a hard test set, so only
    the difference between the models is left to vary. The same ``seed`` always gives the same interval.
    """
    gains = [
        improvement(
            metric,
            metric_on_resamples(metric, y_true, challenger, counts),
            metric_on_resamples(metric, y_true, reference, counts),
        )
        for counts in resample_counts(len(y_true), samples, seed)
    ]
    alpha = 1 - confidence
    low, high = np.quantile(np.concatenate(gains), [alpha / 2, 1 - alpha / 2])
    point = improvement(metric, metric_value(metric, y_true, challenger), metric_value(metric, y_true, reference))
    return Interval(float(point), float(low), float(high), confidence, samples)


def resample_counts(rows: int, samples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The bootstrap's ``samples`` resamples of ``rows`` rows, in chunks of at most BOOTSTRAP_CHUNK_CELLS cells:
    row ``i`` of a chunk says how often each row is drawn in one resample. The same ``seed`` always draws the same
    resamples, so two statistics computed on the chunks are paired."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(samples, BOOTSTRAP_CHUNK_CELLS // max(rows, 1)))
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        yield np.stack([np.bincount(rng.integers(0, rows, rows), minlength=rows) for _ in range(size)])


def metric_value(metric: str, y_true: np.ndarray, predictions: np.ndarray) -> float:
    """``metric`` on all the rows once, with the same arithmetic as on the resamples."""
    return float(metric_on_resamples(metric, y_true, predictions, np.ones((1, len(y_true))))[0])


def metric_on_resamples(metric: str, y_true: np.ndarray, predictions: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``metric`` on each resample at once; row ``i`` of ``counts`` says how often each row is drawn.

    Equal to scikit-learn's metric on the resampled rows (tested), computed from weighted sums so a thousand
    resamples cost a few matrix products instead of a thousand metric calls.
    """
    counts = np.asarray(counts, dtype="float64")
    if metric == "r2":
        y = np.asarray(y_true, dtype="float64")
        errors = (y - np.asarray(predictions, dtype="float64")) ** 2
        sums = counts @ np.column_stack([y, y**2, errors])
        total = counts.sum(axis=1)
        spread = sums[:, 1] - sums[:, 0] ** 2 / total
        residual = sums[:, 2]
        # scikit-learn's convention for constant truth: 1 when predicted exactly, else 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1 - residual / spread
        constant = np.isclose(spread, 0.0, atol=1e-12 * np.maximum(1.0, sums[:, 1]))
        return np.where(constant, np.where(np.isclose(residual, 0.0), 1.0, 0.0), r2)
    if metric in ("f1_macro", "balanced_accuracy"):
        y = np.asarray(y_true).astype(str)
        predicted = np.asarray(predictions).astype(str)
        labels = np.union1d(y, predicted)
        truth = y[:, None] == labels[None, :]
        guess = predicted[:, None] == labels[None, :]
        true_positive = counts @ (truth & guess)
        if metric == "balanced_accuracy":
            # The mean recall over the labels drawn as truth (scikit-learn ignores a label only ever predicted).
            support = counts @ truth
            drawn = support > 0
            recall = np.divide(true_positive, support, out=np.zeros_like(support), where=drawn)
            return recall.sum(axis=1) / drawn.sum(axis=1)
        false_positive = counts @ (~truth & guess)
        false_negative = counts @ (truth & ~guess)
        denominator = 2 * true_positive + false_positive + false_negative
        # A label drawn neither as truth nor as prediction is not a label of that resample (as in scikit-learn).
        present = denominator > 0
        per_label = np.divide(2 * true_positive, denominator, out=np.zeros_like(denominator), where=present)
        return per_label.sum(axis=1) / present.sum(axis=1)
    raise ValueError(f"the paired bootstrap computes {list(RESAMPLED_METRICS)}, not {metric!r}")
