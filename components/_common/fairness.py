"""Fairness of a model's predictions across the groups of a sensitive column (fairlearn underneath): which groups
exist, how the model does for each, and how far apart the groups are. One module for the evaluation report, the
gate's fairness guard and the monitoring of labelled batches, so all three read the same numbers.

The rule:
- every value of the sensitive column is a group; missing values form one more, MISSING_GROUP; groups are listed
  largest first, ties by value;
- a group of fewer than ``min_group_rows`` rows is listed with its rows but not scored (``judged=False``): its rates
  vary too much to be read, and a gap measured on it would be noise;
- the per-group numbers come from fairlearn's ``MetricFrame``, the gaps from fairlearn's fairness functions, called
  on the rows of the judged groups only. A number that is undefined on the rows at hand is left out rather than NaN
  (as ``scoring.score`` does): a gap needs two judged groups.

What each number means, in plain words.

Classifiers (binary: ``positive_label`` is the positive class, e.g. the card's ``classes[1]``, read as the favourable
outcome, as fairlearn does: being "selected"):
- ``selection_rate``: the share of the group's rows the model predicts the positive class for;
- ``true_positive_rate``: of the group's rows whose true label is the positive class, the share the model predicts
  positive (left out for a group with fewer than ``min_group_rows`` such rows: a rate on a handful of rows is noise);
- ``false_positive_rate``: of the group's rows whose true label is another class, the share the model predicts
  positive all the same (left out for a group with fewer than ``min_group_rows`` such rows);
- ``accuracy``: the share of the group's rows predicted right;
- ``demographic_parity_difference``: the highest group selection rate minus the lowest (0: every group is selected
  as often; 0.2: one group is predicted positive 20 points more often than another), whatever the true labels;
- ``demographic_parity_ratio``: the lowest group selection rate divided by the highest (1: parity; 0.8 is the
  "four-fifths rule" of US employment law), left out when no judged group is ever selected;
- ``equalized_odds_difference``: the larger of the gap in true positive rates and the gap in false positive rates
  between groups (0: the model is as often right on the positives and as often wrong on the negatives of every
  group); computed over the judged groups that have both rates (``comparable_groups``).
Multiclass (no ``positive_label``): each class in turn is the positive outcome (one-vs-rest); the per-group metrics
are named with the class, e.g. ``selection_rate[setosa]``, and each gap is the worst over the classes (the largest
difference, the smallest ratio), so one tolerance holds whatever the number of classes. A class is compared only in
the judged groups holding at least ``min_group_rows`` rows of it: the worst of many classes would otherwise always
be a rare class's noise (with a few rows of a class, one group's rate is 0 and another's 1).
``worst_group``: the group at the unfavourable end of each gap: the lowest selection rate (demographic parity), the
lowest true positive rate or, when the false positive rates are further apart, the lowest false positive rate
(equalized odds): the group that gets the positive outcome least. When the positive class is the unfavourable
outcome (e.g. "default"), the group disadvantaged is the one at the other end; the table lists every group's rates.

Regressors:
- ``mae`` and ``rmse`` per group: the mean absolute error and the root mean squared error on the group's rows, in
  the target's unit;
- ``mae_relative_gap`` and ``rmse_relative_gap``: the largest group error minus the smallest, divided by the error
  on all the judged rows together (0: every group's predictions are as close; 0.5: the worst-served group's error
  exceeds the best-served one's by half the typical error). Relative, so one tolerance reads the same for a target
  in dollars or in degrees; 0 when every judged row is predicted exactly. The errors are in the target's unit, so
  a group whose targets are larger (dearer houses) tends to have larger errors: a gap present in the data shows in
  every model, which is why the gate compares a challenger's gap with the champion's on the same rows;
``worst_group``: the group with the largest error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error, root_mean_squared_error

from components._common.policies import check_range, policy_from_mapping
from components._common.scoring import CLASSIFICATION, REGRESSION, check_task, label_codes
from model_bundle.groups import MISSING_GROUP, group_name  # the model server's names of the same groups

MIN_GROUP_ROWS = 30
DP_DIFFERENCE, DP_RATIO, EO_DIFFERENCE = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
MAE_GAP, RMSE_GAP = "mae_relative_gap", "rmse_relative_gap"
# The gaps each task reports, by name; all but demographic_parity_ratio are worse higher (0 is parity), the ratio is
# worse lower (1 is parity): HIGHER_IS_FAIRER says which.
GAP_METRICS: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: (DP_DIFFERENCE, DP_RATIO, EO_DIFFERENCE),
    REGRESSION: (MAE_GAP, RMSE_GAP),
}
HIGHER_IS_FAIRER = {DP_DIFFERENCE: False, DP_RATIO: True, EO_DIFFERENCE: False, MAE_GAP: False, RMSE_GAP: False}
# The largest limit that means something: the differences and the ratio lie in [0, 1], and so do a limit on them and
# how far they may widen (80 for a ratio meant as 0.8 would hold every model); the relative gaps have no upper bound.
GAP_LIMIT_MAX = {DP_DIFFERENCE: 1.0, DP_RATIO: 1.0, EO_DIFFERENCE: 1.0, MAE_GAP: math.inf, RMSE_GAP: math.inf}
# One line each, for tables and reasons (the module docstring says it at length).
GAP_DESCRIPTIONS = {
    DP_DIFFERENCE: "the highest group selection rate minus the lowest: how much more often one group is predicted the "
    "positive class than another, whatever the true labels (parity: 0)",
    DP_RATIO: "the lowest group selection rate divided by the highest (parity: 1; under 0.8 fails the four-fifths "
    "rule)",
    EO_DIFFERENCE: "the larger of the gaps between groups in true positive rate and in false positive rate: whether "
    "the model is as often right on every group's positives and as often wrong on its negatives (parity: 0)",
    MAE_GAP: "the largest group MAE minus the smallest, over the MAE of all judged rows: how much worse the "
    "worst-served group is predicted, in units of the typical error (parity: 0)",
    RMSE_GAP: "the same with RMSE, which weighs large errors more (parity: 0)",
}
_RATES = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
}
_ERRORS = {"mae": mean_absolute_error, "rmse": root_mean_squared_error}
_RELATIVE_GAPS = {MAE_GAP: "mae", RMSE_GAP: "rmse"}


@dataclass(frozen=True)
class GroupScores:
    """One group of a sensitive column: its value (MISSING_GROUP for missing values), its rows, whether it has rows
    enough to be judged, and its metrics (empty when not judged)."""

    value: str
    rows: int
    judged: bool
    metrics: dict[str, float]


@dataclass(frozen=True)
class ColumnFairness:
    """The fairness of predictions across the groups of one sensitive column (see the module docstring for what
    each number means). ``gaps`` and ``worst_group`` are empty when fewer than two groups are judged."""

    column: str
    groups: list[GroupScores]
    overall: dict[str, float]
    gaps: dict[str, float]
    worst_group: dict[str, str]

    @property
    def judged_groups(self) -> list[str]:
        return [group.value for group in self.groups if group.judged]


@dataclass(frozen=True)
class _GroupRule:
    min_group_rows: int = MIN_GROUP_ROWS


def min_group_rows_from_gate_policy(gate_policy: Mapping | None) -> int:
    """``gate_policy['min_group_rows']`` (MIN_GROUP_ROWS when unset), checked: the one minimum group size for the
    evaluation report and the gate, set in the gate's policy (as ``slices.SliceRule`` is) so the report scores
    exactly the groups the gate judges; the gate checks the policy's other keys."""
    key = "min_group_rows"
    rule = policy_from_mapping(_GroupRule, {key: gate_policy[key]} if key in (gate_policy or {}) else {}, "gate_policy")
    if rule.min_group_rows < 1:
        raise ValueError(f"parameter gate_policy['min_group_rows'] must be at least 1, got {rule.min_group_rows}")
    return rule.min_group_rows


def check_sensitive_columns(sensitive_columns, columns: Iterable[str], *, target: str = "") -> list[str]:
    """``sensitive_columns`` as a list of column names, each a column of ``columns``; ValueError naming the
    parameter and the names at fault for a value that is not a list of names, duplicates, unknown names, or the
    ``target`` (a model's own label is not a group of people)."""
    if not isinstance(sensitive_columns, (list, tuple)) or not all(
        isinstance(name, str) and name for name in sensitive_columns
    ):
        raise ValueError(f"parameter sensitive_columns must be a list of column names, got {sensitive_columns!r}")
    names = list(sensitive_columns)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"parameter sensitive_columns names {duplicates} more than once")
    if target and target in names:
        raise ValueError(
            f"parameter sensitive_columns: {target!r} is the target; name the columns that hold the groups to "
            "compare (e.g. sex, age band), not the label the model predicts"
        )
    known = [str(name) for name in columns]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"parameter sensitive_columns: unknown column(s) {unknown}; the data's columns are {known}")
    return names


def check_gap_limits(limits: Mapping, parameter: str, null_means: str) -> None:
    """``limits`` (a policy's ``max_fairness_gap``) maps gap metrics to finite numbers from 0 to GAP_LIMIT_MAX or null
    (``null_means``, e.g. "guard off"); raises ValueError naming ``parameter`` and the keys that do not."""
    known = [metric for metrics in GAP_METRICS.values() for metric in metrics]
    unknown = sorted(str(name) for name in set(limits) - set(known))
    if unknown:
        raise ValueError(f"parameter {parameter} names unknown gap metric(s) {unknown}; gap metrics are {known}")
    bad = sorted(
        str(name)
        for name, value in limits.items()
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0)
    )
    if bad:
        raise ValueError(
            f"parameter {parameter} must map gap metrics to numbers >= 0 or null ({null_means}); {bad} are not"
        )
    for name, value in limits.items():
        if value is not None:
            check_range(f"{parameter}[{name!r}]", value, 0.0, GAP_LIMIT_MAX[name], also=f" or null ({null_means})")


def gap_limits(task: str, limits: Mapping, defaults: Mapping, parameter: str) -> dict[str, float | None]:
    """The limit of each gap metric of ``task``: ``defaults`` with ``limits`` over them (None: not judged); raises
    ValueError naming ``parameter`` and a key that is a gap metric of another task."""
    allowed = GAP_METRICS[task]
    other = sorted(set(limits) - set(allowed))
    if other:
        raise ValueError(
            f"parameter {parameter} names gap metric(s) {other} not computed for {task}; use {list(allowed)}"
        )
    return {metric: limits.get(metric, defaults[metric]) for metric in allowed}


def group_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """The group of each row of ``frame`` by ``column``, named as the model server names it in its per-group
    metrics (model_bundle.groups.group_name: 3.0 is "3", True is "True"), missing values as MISSING_GROUP, so a
    group in a report is the group on the dashboard. KeyError naming the column when ``frame`` lacks it."""
    if column not in frame.columns:
        raise KeyError(f"sensitive column {column!r} is not a column of the data; columns are {list(frame.columns)}")
    codes, uniques = pd.factorize(frame[column])  # each distinct value named once
    names = np.array([group_name(value) or MISSING_GROUP for value in uniques] + [MISSING_GROUP], dtype=object)
    return pd.Series(names[codes], index=frame.index, name=column, dtype=object).astype(str)


def positive_label(task: str, classes) -> str | None:
    """The class a binary classifier's fairness rates count as the positive outcome: its second class (``classes``
    of the model card; what predict_proba's second column and roc_auc take as positive); None for a multiclass
    model (each class in turn) or a regressor."""
    classes = list(classes or [])
    return str(classes[1]) if task == CLASSIFICATION and len(classes) == 2 else None


def assess(
    task: str,
    y_true,
    y_pred,
    groups: pd.Series,
    *,
    positive_label: str | None = None,
    min_group_rows: int = MIN_GROUP_ROWS,
) -> ColumnFairness:
    """The fairness of ``y_pred`` against ``y_true`` across ``groups`` (one label per row, e.g. ``group_labels``;
    its name is the column's). Classifiers: with ``positive_label`` that class is the positive outcome, without it
    each class in turn (multiclass); labels are compared as text. Regressors: errors by group."""
    check_task(task)
    if min_group_rows < 1:
        raise ValueError(f"min_group_rows must be at least 1, got {min_group_rows}")
    groups = pd.Series(np.asarray(groups, dtype=object).astype(str), name=str(groups.name or ""))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if not len(y_true) == len(y_pred) == len(groups):
        raise ValueError(
            f"assess: {len(y_true)} true values, {len(y_pred)} predictions and {len(groups)} group labels; "
            "expected one of each per row"
        )
    names, sizes = np.unique(groups.to_numpy(), return_counts=True)
    ordered = sorted(zip(names.tolist(), sizes.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
    judged = [name for name, rows in ordered if rows >= min_group_rows]
    if task == CLASSIFICATION:
        by_group, overall, gaps, worst = _classification(
            y_true.astype(str), y_pred.astype(str), groups, judged, positive_label, min_group_rows
        )
    else:
        by_group, overall, gaps, worst = _regression(y_true.astype("float64"), y_pred.astype("float64"), groups, judged)
    return ColumnFairness(
        column=groups.name,
        groups=[
            GroupScores(name, rows, name in judged, by_group.get(name, {}) if name in judged else {})
            for name, rows in ordered
        ],
        overall=overall,
        gaps=gaps,
        worst_group=worst,
    )


def class_rows(y_true, groups, judged: list[str]) -> dict[str, dict[str, int]]:
    """Per judged group, how many of its rows hold each class (labels and groups as text): what
    ``comparable_groups`` reads, counted once for every class."""
    labels, (label,) = label_codes(y_true)
    names, (group,) = label_codes(np.asarray(groups, dtype=object))
    counts = np.bincount(group * len(labels) + label, minlength=len(names) * len(labels)).reshape(len(names), -1)
    rows: dict[str, dict[str, int]] = {name: {} for name in judged}
    for name, per_label in zip(names.tolist(), counts.tolist(), strict=True):
        if name in rows:
            rows[name] = {text: count for text, count in zip(labels.tolist(), per_label, strict=True) if count}
    return rows


def comparable_groups(
    rows: dict[str, dict[str, int]],
    judged: list[str],
    label: str,
    *,
    min_group_rows: int = MIN_GROUP_ROWS,
    multiclass: bool = False,
) -> tuple[list[str], list[str]]:
    """For the decision "is the row of class ``label``", the ``judged`` groups (in their order) whose rates are
    compared: (demographic parity: selection rates; equalized odds: true and false positive rates). ``rows``: each
    judged group's rows per class (``class_rows``).

    A true (false) positive rate is only read on a group holding at least ``min_group_rows`` rows of ``label``
    (of other classes): equalized odds compares the groups where both are. A binary decision's selection rates are
    compared in every judged group; a ``multiclass`` one's only in the groups holding ``min_group_rows`` rows of
    ``label``: taking the worst of many classes would otherwise let the rarest class's noise decide every gap."""
    enough = _rates_read(rows, judged, label, min_group_rows)
    parity = [name for name in judged if enough[name][0]] if multiclass else list(judged)
    odds = [name for name in judged if all(enough[name])]
    return parity, odds


def _rates_read(
    rows: dict[str, dict[str, int]], judged: list[str], label: str, min_group_rows: int
) -> dict[str, tuple[bool, bool]]:
    """Per judged group: whether it holds ``min_group_rows`` rows of ``label`` (its true positive rate is read) and
    of other classes (its false positive rate is)."""
    read = {}
    for name in judged:
        of_label = rows[name].get(label, 0)
        read[name] = (of_label >= min_group_rows, sum(rows[name].values()) - of_label >= min_group_rows)
    return read


def _classification(y_true, y_pred, groups, judged, positive_label, min_group_rows):
    multiclass = positive_label is None
    if multiclass:
        outcomes = [(label, f"[{label}]") for label in np.union1d(y_true, y_pred).tolist()]
    else:
        outcomes = [(str(positive_label), "")]
    accuracy = MetricFrame(
        metrics={"accuracy": accuracy_score}, y_true=y_true, y_pred=y_pred, sensitive_features=groups
    )
    by_group = {name: {"accuracy": float(accuracy.by_group.loc[name, "accuracy"])} for name in judged}
    overall = {"accuracy": float(accuracy.overall["accuracy"])}
    gaps, worst = {}, {}
    rows = class_rows(y_true, groups, judged)
    for label, suffix in outcomes:
        # One binary decision per outcome: is the row (predicted) this class? fairlearn's rates take 1 as positive.
        positive, predicted = (y_true == label).astype(int), (y_pred == label).astype(int)
        rates = MetricFrame(metrics=_RATES, y_true=positive, y_pred=predicted, sensitive_features=groups)
        read = _rates_read(rows, judged, label, min_group_rows)
        for name in judged:
            shown = dict(zip(_RATES, (True, *read[name]), strict=True))
            for metric in _RATES:
                if shown[metric]:
                    by_group[name][metric + suffix] = float(rates.by_group.loc[name, metric])
        overall["selection_rate" + suffix] = float(rates.overall["selection_rate"])
        if positive.any():
            overall["true_positive_rate" + suffix] = float(rates.overall["true_positive_rate"])
        if not positive.all():
            overall["false_positive_rate" + suffix] = float(rates.overall["false_positive_rate"])
        parity, odds = comparable_groups(rows, judged, label, min_group_rows=min_group_rows, multiclass=multiclass)
        _classification_gaps(positive, predicted, groups, parity, odds, by_group, suffix, gaps, worst)
    return by_group, overall, gaps, worst


def _classification_gaps(positive, predicted, groups, parity, odds, by_group, suffix, gaps, worst):
    """The gaps of one binary outcome over the groups compared (``comparable_groups``), kept in ``gaps``/``worst``
    where they are worse than another outcome's (multiclass: the worst class decides)."""
    if len(parity) >= 2:
        mask = groups.isin(parity).to_numpy()
        features = groups[mask]
        rates = {name: by_group[name]["selection_rate" + suffix] for name in parity}
        low = min(parity, key=rates.get)
        difference = demographic_parity_difference(positive[mask], predicted[mask], sensitive_features=features)
        ratio = demographic_parity_ratio(positive[mask], predicted[mask], sensitive_features=features)
        _keep(gaps, worst, DP_DIFFERENCE, difference, low)
        _keep(gaps, worst, DP_RATIO, ratio, low)
    if len(odds) < 2:
        return
    mask = groups.isin(odds).to_numpy()
    value = equalized_odds_difference(positive[mask], predicted[mask], sensitive_features=groups[mask])
    spread = {}
    for metric in ("true_positive_rate", "false_positive_rate"):
        values = {name: by_group[name][metric + suffix] for name in odds}
        spread[metric] = (max(values.values()) - min(values.values()), min(odds, key=values.get))
    _keep(gaps, worst, EO_DIFFERENCE, value, max(spread.values(), key=lambda item: item[0])[1])


def _keep(gaps: dict, worst: dict, metric: str, value: float, group: str) -> None:
    value = float(value)
    if np.isnan(value):
        return
    if metric not in gaps or (value < gaps[metric] if HIGHER_IS_FAIRER[metric] else value > gaps[metric]):
        gaps[metric], worst[metric] = value, group


def _regression(y_true, y_pred, groups, judged):
    errors = MetricFrame(metrics=_ERRORS, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    by_group = {name: {metric: float(errors.by_group.loc[name, metric]) for metric in _ERRORS} for name in judged}
    overall = {metric: float(errors.overall[metric]) for metric in _ERRORS}
    gaps, worst = {}, {}
    if len(judged) < 2:
        return by_group, overall, gaps, worst
    mask = groups.isin(judged).to_numpy()
    among = MetricFrame(metrics=_ERRORS, y_true=y_true[mask], y_pred=y_pred[mask], sensitive_features=groups[mask])
    for gap, metric in _RELATIVE_GAPS.items():
        typical = float(among.overall[metric])
        spread = float(among.difference()[metric])
        gaps[gap] = spread / typical if typical > 0 else 0.0
        worst[gap] = max(judged, key=lambda name: by_group[name][metric])
    return by_group, overall, gaps, worst
