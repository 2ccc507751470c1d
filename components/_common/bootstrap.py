"""The paired bootstrap: a percentile confidence interval of one set of predictions' gain over another on the same
rows, with r2, macro F1 and balanced accuracy computed on every resample at once from weighted sums.

A plain statistics kernel (numbers in, an Interval out): the gate compares a challenger with the champion and with
the constant baseline through it, and any other comparison of two models on shared rows can.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from components._common.scoring import improvement, label_codes

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
    score = ResampledMetric(metric, y_true, [challenger, reference])
    gains = [improvement(metric, *score(counts)) for counts in resample_counts(len(y_true), samples, seed)]
    alpha = 1 - confidence
    low, high = np.quantile(np.concatenate(gains), [alpha / 2, 1 - alpha / 2])
    point = improvement(metric, *score(np.ones((1, len(y_true)))))
    return Interval(float(point[0]), float(low), float(high), confidence, samples)


def resample_counts(rows: int, samples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The bootstrap's ``samples`` resamples of ``rows`` rows, in chunks of at most BOOTSTRAP_CHUNK_CELLS cells:
    row ``i`` of a chunk says how often each row is drawn in one resample (as floats, ready for the weighted sums).
    The same ``seed`` always draws the same resamples, so two statistics computed on the chunks are paired."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(samples, BOOTSTRAP_CHUNK_CELLS // max(rows, 1)))
    for start in range(0, samples, chunk):
        counts = np.empty((min(chunk, samples - start), rows))
        for resample in counts:
            resample[:] = np.bincount(rng.integers(0, rows, rows), minlength=rows)
        yield counts


def metric_value(metric: str, y_true: np.ndarray, predictions: np.ndarray) -> float:
    """``metric`` on all the rows once, with the same arithmetic as on the resamples."""
    return float(metric_on_resamples(metric, y_true, predictions, np.ones((1, len(y_true))))[0])


def metric_on_resamples(metric: str, y_true: np.ndarray, predictions: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``metric`` on each resample at once; row ``i`` of ``counts`` says how often each row is drawn."""
    return ResampledMetric(metric, y_true, [predictions])(counts)[0]


class ResampledMetric:
    """``metric`` of several sets of predictions of the same rows, on many resamples at once.

    Equal to scikit-learn's metric on the resampled rows (tested). Each row's terms are computed once, here: a
    resample is then one weighted sum of them (r2: the truth, its square and each set's squared error; the
    classification metrics: each set's confusion matrix), so a thousand resamples cost a few matrix products
    instead of a thousand metric calls, however the resamples are chunked.
    """

    def __init__(self, metric: str, y_true: np.ndarray, predictions: Sequence[np.ndarray]):
        if metric not in RESAMPLED_METRICS:
            raise ValueError(f"the paired bootstrap computes {list(RESAMPLED_METRICS)}, not {metric!r}")
        self.metric, self.sets, rows = metric, len(predictions), len(y_true)
        if metric == "r2":
            y = np.asarray(y_true, dtype="float64")
            errors = [(y - np.asarray(predicted, dtype="float64")) ** 2 for predicted in predictions]
            self.terms = np.column_stack([y, y**2, *errors])
            return
        # One cell per (set, true label, predicted label): a row is one count in each set's confusion matrix.
        labels, (truth, *predicted) = label_codes(y_true, *predictions)
        self.labels, cells = len(labels), len(labels) ** 2
        columns = [k * cells + truth * self.labels + codes for k, codes in enumerate(predicted)]
        # Built as CSR directly (row i's cells at i * sets ...): no sort of the rows x sets entries.
        self.terms = sparse.csr_array(
            (
                np.ones(rows * self.sets),
                np.column_stack(columns).ravel(),
                np.arange(0, rows * self.sets + 1, self.sets),
            ),
            shape=(rows, self.sets * cells),
        )

    def __call__(self, counts: np.ndarray) -> list[np.ndarray]:
        """The metric of each set of predictions on each resample (row ``i`` of ``counts``: how often each row is
        drawn)."""
        counts = np.asarray(counts, dtype="float64")
        block = max(1, BOOTSTRAP_CHUNK_CELLS // self.terms.shape[1])  # the sums' memory bounded too (many classes)
        if len(counts) > block:
            parts = [self(counts[start : start + block]) for start in range(0, len(counts), block)]
            return [np.concatenate(values) for values in zip(*parts, strict=True)]
        sums = np.asarray(counts @ self.terms)
        if self.metric == "r2":
            spread = sums[:, 1] - sums[:, 0] ** 2 / counts.sum(axis=1)
            # scikit-learn's convention for constant truth: 1 when predicted exactly, else 0.
            constant = np.isclose(spread, 0.0, atol=1e-12 * np.maximum(1.0, sums[:, 1]))
            with np.errstate(divide="ignore", invalid="ignore"):
                return [
                    np.where(constant, np.where(np.isclose(residual, 0.0), 1.0, 0.0), 1 - residual / spread)
                    for residual in sums[:, 2:].T
                ]
        confusion = sums.reshape(len(counts), self.sets, self.labels, self.labels)  # resample, set, truth, predicted
        true_positive = np.diagonal(confusion, axis1=2, axis2=3)
        support, predicted = confusion.sum(axis=3), confusion.sum(axis=2)
        if self.metric == "balanced_accuracy":
            # The mean recall over the labels drawn as truth (scikit-learn ignores a label only ever predicted).
            drawn = support > 0
            recall = np.divide(true_positive, support, out=np.zeros_like(support), where=drawn)
            values = recall.sum(axis=2) / drawn.sum(axis=2)
        else:
            # 2 tp + fp + fn; a label drawn neither as truth nor as prediction is not a label of that resample (as
            # in scikit-learn).
            denominator = support + predicted
            present = denominator > 0
            per_label = np.divide(2 * true_positive, denominator, out=np.zeros_like(denominator), where=present)
            values = per_label.sum(axis=2) / present.sum(axis=2)
        return list(values.T)
