"""Fairness gaps on bootstrap resamples: each gap metric of components._common.fairness, computed on many resamples
of the rows at once, so that a gap (or the difference of two models' gaps on the same rows) gets a confidence
interval. The gate tells a widening from noise with it; monitoring tells a gap beyond its limit from noise.

On each resample the gaps are computed from weighted sums over a fixed set of judged groups (those of all the rows:
a resample redraws rows, not which groups count), with fairlearn's definitions: per-group rates or errors, then the
highest minus the lowest (the ratio of the lowest to the highest selection rate; the relative error gap over the
judged rows' error); a group that drew no row of a kind leaves that rate out, as ``fairness.assess`` leaves out a
group without such rows. Tested equal to ``fairness.assess`` on the resampled rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from components._common import fairness
from components._common.bootstrap import resample_counts
from components._common.scoring import CLASSIFICATION


def resampled_gaps(
    task: str,
    y_true,
    predictions: Sequence,
    groups,
    judged: list[str],
    positive_label: str | None = None,
    samples: int = 1000,
    seed: int = 0,
    min_group_rows: int = fairness.MIN_GROUP_ROWS,
) -> list[dict[str, np.ndarray]]:
    """For each set of ``predictions``, each gap metric of ``task`` over the ``judged`` groups on the same
    ``samples`` resamples of the rows (paired: the same ``seed`` draws the same resamples as the gate's other
    intervals); NaN where a gap is undefined on a resample. ``min_group_rows`` decides which groups' rates are
    compared, as in ``fairness.assess`` (``fairness.comparable_groups``)."""
    y_true = np.asarray(y_true)
    groups = np.asarray(groups, dtype=object).astype(str)
    chunks: list[list[dict[str, np.ndarray]]] = [[] for _ in predictions]
    for counts in resample_counts(len(y_true), samples, seed):
        for chunk, predicted in zip(chunks, predictions, strict=True):
            chunk.append(
                gaps_on_resamples(
                    task, y_true, np.asarray(predicted), groups, judged, counts, positive_label, min_group_rows
                )
            )
    return [
        {metric: np.concatenate([part[metric] for part in chunk]) for metric in fairness.GAP_METRICS[task]}
        for chunk in chunks
    ]


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """The central ``confidence`` percentile interval of ``values``, resamples where the statistic is undefined
    (NaN) left out; None when it is undefined on every one."""
    values = np.asarray(values, dtype="float64")
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = 1 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def gaps_on_resamples(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    judged: list[str],
    counts: np.ndarray,
    positive_label: str | None = None,
    min_group_rows: int = fairness.MIN_GROUP_ROWS,
) -> dict[str, np.ndarray]:
    """Each gap metric of ``task`` over the ``judged`` groups on each resample at once (row ``i`` of ``counts`` says
    how often each test row is drawn), NaN where undefined; equal to ``fairness.assess`` on the resampled rows when
    the groups whose rates are compared are the same there (``fairness.comparable_groups``: decided once, on all
    the rows)."""
    counts = np.asarray(counts, dtype="float64")
    members = groups[:, None] == np.asarray(judged, dtype=object)[None, :]  # rows x judged groups
    if task == CLASSIFICATION:
        return _classification_gaps(
            np.asarray(y_true).astype(str),
            np.asarray(y_pred).astype(str),
            groups,
            judged,
            members,
            counts,
            positive_label,
            min_group_rows,
        )
    return _regression_gaps(np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64"), members, counts)


def _rates(counts: np.ndarray, members: np.ndarray, hits: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Per resample and group: the weighted share of the group's ``among`` rows that are ``hits``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (counts @ (members & (hits & among)[:, None])) / (counts @ (members & among[:, None]))


def _extremes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: the lowest and the highest value over the groups that have one (NaN with fewer than two: no
    gap; a group can draw no row of its kind on a resample)."""
    defined = ~np.isnan(values)
    two = defined.sum(axis=1) >= 2
    low = np.where(two, np.where(defined, values, np.inf).min(axis=1), np.nan)
    high = np.where(two, np.where(defined, values, -np.inf).max(axis=1), np.nan)
    return low, high


def _spread(values: np.ndarray) -> np.ndarray:
    """Per resample: the highest value minus the lowest over the groups that have one."""
    low, high = _extremes(values)
    return high - low


def _classification_gaps(
    y_true, y_pred, groups, judged, members, counts, positive_label, min_group_rows
) -> dict[str, np.ndarray]:
    resamples = counts.shape[0]
    worst = {metric: np.full(resamples, np.nan) for metric in fairness.GAP_METRICS[CLASSIFICATION]}
    if members.shape[1] < 2:
        return worst
    everyone = np.ones(len(y_true), dtype=bool)
    multiclass = positive_label is None
    labels = np.union1d(y_true, y_pred).tolist() if multiclass else [str(positive_label)]
    for label in labels:
        positive, predicted = y_true == label, y_pred == label
        # The groups whose rates are compared, by assess's own rule, on all the rows.
        parity, odds_groups = fairness.comparable_groups(
            y_true, groups, judged, label, min_group_rows=min_group_rows, multiclass=multiclass
        )
        compared = np.isin(np.asarray(judged, dtype=object), parity)
        difference, ratio = np.full(resamples, np.nan), np.full(resamples, np.nan)
        if compared.sum() >= 2:
            low, high = _extremes(_rates(counts, members[:, compared], predicted, everyone))
            difference = high - low
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(high > 0, low / high, np.nan)
        both = np.isin(np.asarray(judged, dtype=object), odds_groups)
        odds = np.full(resamples, np.nan)
        if both.sum() >= 2:
            tpr = _rates(counts, members[:, both], predicted, positive)
            fpr = _rates(counts, members[:, both], predicted, ~positive)
            # A group needs both rates on the resample to be compared, as assess needs both kinds of rows.
            undefined = np.isnan(tpr) | np.isnan(fpr)
            tpr[undefined], fpr[undefined] = np.nan, np.nan
            odds = np.fmax(_spread(tpr), _spread(fpr))
        # Multiclass: the worst class decides, as in assess (fmax/fmin skip a class where a gap is undefined).
        worst[fairness.DP_DIFFERENCE] = np.fmax(worst[fairness.DP_DIFFERENCE], difference)
        worst[fairness.DP_RATIO] = np.fmin(worst[fairness.DP_RATIO], ratio)
        worst[fairness.EO_DIFFERENCE] = np.fmax(worst[fairness.EO_DIFFERENCE], odds)
    return worst


def _regression_gaps(y_true, y_pred, members, counts) -> dict[str, np.ndarray]:
    resamples = counts.shape[0]
    if members.shape[1] < 2:
        return {metric: np.full(resamples, np.nan) for metric in fairness.GAP_METRICS["regression"]}
    errors = y_pred - y_true
    weights = members.astype("float64")
    judged = members.any(axis=1).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = counts @ weights
        absolute = (counts @ (weights * np.abs(errors)[:, None])) / rows
        squared = np.sqrt((counts @ (weights * (errors**2)[:, None])) / rows)
        typical_absolute = (counts @ (judged * np.abs(errors))) / (counts @ judged)
        typical_squared = np.sqrt((counts @ (judged * errors**2)) / (counts @ judged))
        return {
            fairness.MAE_GAP: _relative(_spread(absolute), typical_absolute),
            fairness.RMSE_GAP: _relative(_spread(squared), typical_squared),
        }


def _relative(spread: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """The spread over the typical error; 0 where every judged row is predicted exactly (as assess)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(typical > 0, spread / typical, np.where(np.isnan(spread), np.nan, 0.0))
