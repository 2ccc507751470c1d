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
from scipy import sparse

from components._common import bootstrap, fairness
from components._common.scoring import CLASSIFICATION, label_codes


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
    gaps = ResampledGaps(task, y_true, predictions, groups, judged, positive_label, min_group_rows)
    chunks = [gaps(counts) for counts in bootstrap.resample_counts(len(y_true), samples, seed)]
    return [
        {metric: np.concatenate([chunk[index][metric] for chunk in chunks]) for metric in fairness.GAP_METRICS[task]}
        for index in range(len(predictions))
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
    return ResampledGaps(task, y_true, [y_pred], groups, judged, positive_label, min_group_rows)(counts)[0]


class ResampledGaps:
    """The gaps of several sets of predictions of the same rows over the ``judged`` groups, on many resamples at
    once.

    Each row's terms are computed once, here, as cells of a sparse table: per set of predictions, the row's judged
    group and, for classification, its true and predicted class (a confusion matrix per group); for regression, its
    group's row count, absolute and squared error. A resample is then one weighted sum of the table, from which every
    group's rates or errors follow, however the resamples are chunked.
    """

    def __init__(
        self,
        task: str,
        y_true,
        predictions: Sequence,
        groups,
        judged: list[str],
        positive_label: str | None = None,
        min_group_rows: int = fairness.MIN_GROUP_ROWS,
    ):
        self.task, self.judged, self.sets = task, list(judged), len(predictions)
        names, (group,) = label_codes(np.asarray(groups, dtype=object))
        position = {name: index for index, name in enumerate(self.judged)}
        group = np.array([position.get(name, -1) for name in names.tolist()], dtype="int64")[group]
        inside = group >= 0  # a row of no judged group counts in no rate
        if task == CLASSIFICATION:
            self.multiclass = positive_label is None
            positive = [] if self.multiclass else [str(positive_label)]
            self.classes, (truth, *predicted, _) = label_codes(y_true, *predictions, positive)
            self.labels = self.classes.tolist() if self.multiclass else positive
            # The groups whose rates are compared, by assess's own rule, on all the rows: per label, (parity, odds).
            rows_of = fairness.class_rows(y_true, groups, self.judged)
            self.compared = {
                label: fairness.comparable_groups(
                    rows_of, self.judged, label, min_group_rows=min_group_rows, multiclass=self.multiclass
                )
                for label in self.labels
            }
            self.width = len(self.classes) ** 2  # a group's confusion matrix
            cells = [
                ((k * len(self.judged) + group) * len(self.classes) + truth) * len(self.classes) + codes
                for k, codes in enumerate(predicted)
            ]
            values = np.ones((len(truth), self.sets))
        else:
            self.width = 3  # a group's rows, absolute errors and squared errors
            y_true = np.asarray(y_true, dtype="float64")
            cells, terms = [], []
            for k, predicted in enumerate(predictions):
                errors = np.asarray(predicted, dtype="float64") - y_true
                cells += [(k * len(self.judged) + group) * 3 + term for term in range(3)]
                terms += [np.ones(len(errors)), np.abs(errors), errors**2]
            values = np.column_stack(terms)
        # Built as CSR directly (a judged row's cells side by side, in increasing order): no sort of the entries.
        per_row = len(cells)
        self.table = sparse.csr_array(
            (
                values[inside].ravel(),
                np.column_stack(cells)[inside].ravel(),
                np.concatenate([[0], np.cumsum(inside * per_row)]),
            ),
            shape=(len(group), self.sets * len(self.judged) * self.width),
        )

    def __call__(self, counts: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Per set of predictions, each gap metric on each resample (row ``i`` of ``counts``: how often each row is
        drawn), NaN where undefined."""
        counts = np.asarray(counts, dtype="float64")
        resamples = counts.shape[0]
        if len(self.judged) < 2:
            undefined = {metric: np.full(resamples, np.nan) for metric in fairness.GAP_METRICS[self.task]}
            return [dict(undefined) for _ in range(self.sets)]
        block = max(1, bootstrap.BOOTSTRAP_CHUNK_CELLS // self.table.shape[1])  # the sums' memory bounded too
        if resamples > block:
            parts = [self(counts[start : start + block]) for start in range(0, resamples, block)]
            return [
                {metric: np.concatenate([part[index][metric] for part in parts]) for metric in parts[0][index]}
                for index in range(self.sets)
            ]
        sums = np.asarray(counts @ self.table).reshape(resamples, self.sets, len(self.judged), self.width)
        if self.task == CLASSIFICATION:
            classes = len(self.classes)
            return [self._classification(sums[:, k].reshape(resamples, -1, classes, classes)) for k in range(self.sets)]
        return [self._regression(sums[:, k]) for k in range(self.sets)]

    def _classification(self, confusion: np.ndarray) -> dict[str, np.ndarray]:
        """``confusion``: per resample and judged group, the weighted rows of each true (axis 2) and predicted (axis
        3) class."""
        resamples = confusion.shape[0]
        worst = {metric: np.full(resamples, np.nan) for metric in fairness.GAP_METRICS[CLASSIFICATION]}
        judged = np.asarray(self.judged, dtype=object)
        everyone = confusion.sum(axis=(2, 3))
        for label in self.labels:
            index = int(np.searchsorted(self.classes, label))
            predicted = confusion[:, :, :, index].sum(axis=2)
            positive = confusion[:, :, index, :].sum(axis=2)
            true_positive = confusion[:, :, index, index]
            parity, odds_groups = self.compared[label]
            compared = np.isin(judged, parity)
            difference, ratio = np.full(resamples, np.nan), np.full(resamples, np.nan)
            if compared.sum() >= 2:
                low, high = _extremes(_share(predicted[:, compared], everyone[:, compared]))
                difference = high - low
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(high > 0, low / high, np.nan)
            both = np.isin(judged, odds_groups)
            odds = np.full(resamples, np.nan)
            if both.sum() >= 2:
                tpr = _share(true_positive[:, both], positive[:, both])
                fpr = _share((predicted - true_positive)[:, both], (everyone - positive)[:, both])
                # A group needs both rates on the resample to be compared, as assess needs both kinds of rows.
                undefined = np.isnan(tpr) | np.isnan(fpr)
                tpr[undefined], fpr[undefined] = np.nan, np.nan
                odds = np.fmax(_spread(tpr), _spread(fpr))
            # Multiclass: the worst class decides, as in assess (fmax/fmin skip a class where a gap is undefined).
            worst[fairness.DP_DIFFERENCE] = np.fmax(worst[fairness.DP_DIFFERENCE], difference)
            worst[fairness.DP_RATIO] = np.fmin(worst[fairness.DP_RATIO], ratio)
            worst[fairness.EO_DIFFERENCE] = np.fmax(worst[fairness.EO_DIFFERENCE], odds)
        return worst

    @staticmethod
    def _regression(sums: np.ndarray) -> dict[str, np.ndarray]:
        """``sums``: per resample and judged group, the weighted rows, absolute errors and squared errors."""
        rows, absolute, squared = sums[:, :, 0], sums[:, :, 1], sums[:, :, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            typical_absolute = absolute.sum(axis=1) / rows.sum(axis=1)
            typical_squared = np.sqrt(squared.sum(axis=1) / rows.sum(axis=1))
            return {
                fairness.MAE_GAP: _relative(_spread(absolute / rows), typical_absolute),
                fairness.RMSE_GAP: _relative(_spread(np.sqrt(squared / rows)), typical_squared),
            }


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Per resample and group: the weighted share ``part`` of ``whole`` (NaN where the group drew none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return part / whole


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


def _relative(spread: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """The spread over the typical error; 0 where every judged row is predicted exactly (as assess)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(typical > 0, spread / typical, np.where(np.isnan(spread), np.nan, 0.0))
