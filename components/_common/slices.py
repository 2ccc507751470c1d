"""Slices of the test set by one column's value: which slices exist, how many rows make one judgeable, and how each
is scored. One rule for the evaluation report and the gate's slice guard, so the report never scores a slice the
gate calls too small.

The rule:
- the slice column must be a feature column of the test set (not the target); each of its values is a slice, and
  missing values form one more, MISSING_SLICE; slices are listed largest first, ties by value;
- a slice of fewer than ``min_slice_rows`` rows (SliceRule) is listed with its rows but neither scored nor judged:
  its metrics vary too much to be read;
- a slice is scored with ``scoring.score`` on its own rows: every metric of the task.
A table that lists at most ``max_listed`` slices (the report: MAX_SLICES) sums up the smaller rest in one row
scored on their pooled rows, named "(N other values)"; the gate lists and judges every slice.

How evaluate_model learns the rule: the minimum is set once, as ``gate_policy['min_slice_rows']``, and the pipeline
passes the same ``gate_policy`` to evaluate_model, which reads only this rule's key from it
(``SliceRule.from_gate_policy``; the gate validates every key). Why there: the minimum exists to say which slices
the gate can judge, and the report shows what the gate will judge; why the whole dict: a pipeline cannot take one
key out of a dict parameter when it is compiled, so the one dict the user sets must reach both steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from components._common.policies import policy_from_mapping
from components._common.scoring import score

MIN_SLICE_ROWS = 30
MISSING_SLICE = "(missing)"
# More slices do not fit a readable table; the smaller ones are summed up in one row.
MAX_SLICES = 50


@dataclass(frozen=True)
class SliceRule:
    """Which slices have rows enough to be scored and judged; set through ``gate_policy``, read by the gate and by
    evaluate_model alike.

    Attributes:
        min_slice_rows: Slices with fewer test rows are listed with their row count but neither scored (evaluation
            report) nor judged (gate): their metrics vary too much to be read.
    """

    min_slice_rows: int = MIN_SLICE_ROWS

    def __post_init__(self):
        if self.min_slice_rows < 1:
            raise ValueError(f"parameter gate_policy['min_slice_rows'] must be at least 1, got {self.min_slice_rows}")

    @classmethod
    def from_gate_policy(cls, gate_policy: Mapping | None) -> SliceRule:
        """The rule as ``gate_policy`` sets it; its other keys are the gate's own (the gate checks them)."""
        keys = {item.name for item in fields(cls)}
        return policy_from_mapping(
            cls, {key: value for key, value in (gate_policy or {}).items() if key in keys}, "gate_policy"
        )

    def judged(self, rows: int) -> bool:
        return rows >= self.min_slice_rows


@dataclass(frozen=True)
class Slice:
    """Test rows sharing one value of the slice column (or a table's summary of the smaller rest), with their
    scores; ``scores`` is None below the rule's ``min_slice_rows``."""

    value: str
    rows: int
    scores: dict[str, float] | None


def slice_labels(test: pd.DataFrame, target: str, slice_column: str) -> pd.Series | None:
    """The slice of each test row, named ``slice_column``: the column's value as text, missing values as
    MISSING_SLICE; None without a slice column. A column that is not a feature of ``test`` raises, naming it."""
    if not slice_column:
        return None
    features = [str(name) for name in test.columns if name != target]
    if slice_column not in features:
        raise ValueError(
            f"parameter slice_column: {slice_column!r} is not a feature column of the test set; "
            f"feature columns are {features}"
        )
    column = test[slice_column]
    return column.astype(object).where(column.notna(), MISSING_SLICE).astype(str)


def score_slices(
    labels: pd.Series,
    rule: SliceRule,
    task: str,
    actual,
    predicted,
    probabilities: np.ndarray | None = None,
    classes: list[str] | None = None,
    max_listed: int | None = None,
) -> list[Slice]:
    """Each slice of ``labels`` (one label per row of ``actual``) with the scores of ``predicted`` on its rows,
    largest first; at most ``max_listed`` slices, then one summary of the rest (None: every slice)."""
    values = labels.to_numpy()
    names, sizes = np.unique(values, return_counts=True)
    ordered = sorted(zip(names.tolist(), sizes.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
    listed = ordered if max_listed is None else ordered[:max_listed]
    parts = [(name, values == name) for name, _ in listed]
    rest = [name for name, _ in ordered[len(listed) :]]
    if rest:
        parts.append((f"({len(rest)} other values)", np.isin(values, rest)))
    actual, predicted = np.asarray(actual), np.asarray(predicted)
    slices = []
    for name, mask in parts:
        rows = int(mask.sum())
        if not rule.judged(rows):
            slices.append(Slice(name, rows, None))
            continue
        chosen = probabilities[mask] if probabilities is not None else None
        slices.append(Slice(name, rows, score(task, actual[mask], predicted[mask], chosen, classes)))
    return slices
