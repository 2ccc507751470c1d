"""The gate's fairness guard: per sensitive column and gap metric, the challenger's gap between groups against the
champion's on the same test rows, and the paired bootstrap interval of the difference.

Both gaps come from components._common.fairness.assess (fairlearn), so the gate reads the numbers the evaluation
report shows. The guard is noise-aware in three ways, as the slice guard is, and one more:
- only groups of at least ``min_group_rows`` test rows are judged: a smaller group's rate moves by 1/rows for every
  row, and a gap measured on it is noise (the groups are the same for both models: the same rows);
- both models are judged on the same rows, so what the rows share (which group is small, which labels are hard or
  biased) cancels, and the difference of the gaps is the models' own;
- the tolerance (``max_fairness_gap``) exceeds what one row of a group at the smallest judged size moves;
- the widening must also be beyond noise: paired resamples of the test rows (the champion check's, seeded alike)
  rescore both models' gaps (components._common.fairness_bootstrap), and a challenger is refused only when its
  widening exceeds the tolerance AND the interval of the widening lies above zero. A widening that small groups
  could produce by chance is reported, not refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components._common import fairness
from components._common.bootstrap import Interval
from components._common.fairness_bootstrap import percentile_interval, resampled_gaps


@dataclass(frozen=True)
class GapComparison:
    """One gap metric of one sensitive column: the challenger's and the champion's gaps (None: undefined on these
    rows, e.g. fewer than two judged groups), the challenger's group at the unfavourable end, the tolerance (None:
    the guard of this gap is off) and the interval of the fairness gain (``Interval.gain`` > 0: the challenger's gap
    is narrower; the widening is its negative)."""

    metric: str
    challenger: float | None
    champion: float | None = None
    worst_group: str = ""
    tolerance: float | None = None
    interval: Interval | None = None

    @property
    def widening(self) -> float | None:
        """How much wider (less fair) the challenger's gap is than the champion's; negative when narrower."""
        return None if self.interval is None else -self.interval.gain

    @property
    def beyond_noise(self) -> bool:
        """Whether the interval of the widening lies above zero."""
        return self.interval is not None and self.interval.high < 0

    @property
    def refused(self) -> bool:
        """Widened by more than the tolerance, beyond noise."""
        return (
            self.tolerance is not None
            and self.widening is not None
            and self.widening > self.tolerance
            and self.beyond_noise
        )


@dataclass(frozen=True)
class ColumnComparison:
    """One sensitive column: both models' fairness (the champion's None without a champion to compare) and each
    gap metric compared."""

    column: str
    challenger: fairness.ColumnFairness
    champion: fairness.ColumnFairness | None = None
    gaps: list[GapComparison] = field(default_factory=list)


def compare_fairness(
    task: str,
    y_true,
    challenger_predictions,
    champion_predictions,
    groups: pd.Series,
    tolerances: Mapping[str, float | None],
    *,
    positive_label: str | None = None,
    min_group_rows: int = fairness.MIN_GROUP_ROWS,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ColumnComparison:
    """The challenger's gaps across ``groups`` (one label per test row, named after the column) against the
    champion's (``champion_predictions`` None: nothing to compare, the challenger's gaps alone), with the paired
    bootstrap interval of each gap's difference."""
    mine = fairness.assess(
        task, y_true, challenger_predictions, groups, positive_label=positive_label, min_group_rows=min_group_rows
    )
    if champion_predictions is None:
        gaps = [
            GapComparison(metric, mine.gaps.get(metric), worst_group=mine.worst_group.get(metric, ""))
            for metric in fairness.GAP_METRICS[task]
        ]
        return ColumnComparison(mine.column, mine, None, gaps)
    theirs = fairness.assess(
        task, y_true, champion_predictions, groups, positive_label=positive_label, min_group_rows=min_group_rows
    )
    comparable = [metric for metric in fairness.GAP_METRICS[task] if metric in mine.gaps and metric in theirs.gaps]
    intervals = _gain_intervals(
        task,
        np.asarray(y_true),
        np.asarray(challenger_predictions),
        np.asarray(champion_predictions),
        np.asarray(groups, dtype=object).astype(str),
        mine.judged_groups,
        comparable,
        positive_label,
        (samples, confidence, seed, min_group_rows),
        {metric: _gain(metric, mine.gaps[metric], theirs.gaps[metric]) for metric in comparable},
    )
    gaps = [
        GapComparison(
            metric,
            mine.gaps.get(metric),
            theirs.gaps.get(metric),
            mine.worst_group.get(metric, ""),
            tolerances.get(metric),
            intervals.get(metric),
        )
        for metric in fairness.GAP_METRICS[task]
    ]
    return ColumnComparison(mine.column, mine, theirs, gaps)


def _gain(metric: str, challenger, champion):
    """How much fairer the challenger is on ``metric`` (negative: it widened the gap): numbers or arrays."""
    return challenger - champion if fairness.HIGHER_IS_FAIRER[metric] else champion - challenger


def _gain_intervals(
    task, y_true, challenger, champion, groups, judged, metrics, positive_label, settings, points
) -> dict[str, Interval]:
    """The percentile interval of each metric's fairness gain over the paired resamples (``settings``: samples,
    confidence, seed, min_group_rows); resamples where a gap is undefined (a group drew no positive row) are left
    out."""
    samples, confidence, seed, min_group_rows = settings
    if not metrics:
        return {}
    mine, theirs = resampled_gaps(
        task, y_true, [challenger, champion], groups, judged, positive_label, samples, seed, min_group_rows
    )
    intervals = {}
    for metric in metrics:
        bounds = percentile_interval(_gain(metric, mine[metric], theirs[metric]), confidence)
        if bounds is not None:
            intervals[metric] = Interval(float(points[metric]), *bounds, confidence, samples)
    return intervals
