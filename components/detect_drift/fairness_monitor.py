"""Fairness on a labelled monitoring batch: the champion's gaps between the groups of each sensitive column, measured
on the batch's labelled rows as the evaluation report and the gate measure them (components._common.fairness), and
held to absolute limits (``DriftPolicy.max_fairness_gap``): there is no challenger here to compare with.

A gap alerts (the step's ``fairness_alert`` output, and its metric) when it is beyond its limit (above it for a
difference, below it for a ratio) AND the whole bootstrap interval of the gap is too (FAIRNESS_CONFIDENCE, resampling
the batch's labelled rows): a batch of a few hundred rows has groups of a few dozen, whose rates move by 1/rows per
row, so a point estimate alone would page someone for noise. Groups under ``min_group_rows`` labelled rows are not
judged at all. A batch without labels (no target column, or every value missing) is reported as such: fairness
needs the true outcome.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from components._common import fairness
from components._common.fairness_bootstrap import percentile_interval, resampled_gaps
from components._common.scoring import predict_in_chunks

# The interval a gap must lie beyond its limit with, and its resamples (seeded: the same batch, the same verdict).
FAIRNESS_CONFIDENCE = 0.95
FAIRNESS_SAMPLES = 1000
NO_LABELS = "no labels: fairness not assessed"


@dataclass(frozen=True)
class GapAlert:
    """One gap of one sensitive column on the batch: its value (None: undefined, e.g. fewer than two judged
    groups), the group at the unfavourable end, its limit (None: no alert on it), its bootstrap interval."""

    metric: str
    value: float | None
    worst_group: str = ""
    limit: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def beyond_limit(self) -> bool:
        """The gap and its whole interval are past the limit: below it for a ratio, above it otherwise."""
        if self.limit is None or self.value is None or self.low is None:
            return False
        if fairness.HIGHER_IS_FAIRER[self.metric]:
            return self.value < self.limit and self.high < self.limit
        return self.value > self.limit and self.low > self.limit


@dataclass(frozen=True)
class ColumnAlerts:
    column: str
    assessed: fairness.ColumnFairness
    gaps: list[GapAlert] = field(default_factory=list)


@dataclass
class BatchFairness:
    """The fairness of the champion on one batch: which sensitive columns, how many labelled rows, and per column
    the gaps; ``labelled`` False when the batch has no labels (nothing assessed)."""

    sensitive_columns: list[str]
    target: str
    labelled: bool = False
    labelled_rows: int = 0
    batch_rows: int = 0
    min_group_rows: int = fairness.MIN_GROUP_ROWS
    columns: list[ColumnAlerts] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        """Whether any judged gap is beyond its limit (the monitoring pipeline's alert condition)."""
        return any(gap.beyond_limit for column in self.columns for gap in column.gaps)


def assess_batch(champion, batch: pd.DataFrame, sensitive_columns: Sequence[str], policy) -> BatchFairness:
    """The champion's fairness on ``batch`` (``champion``: a registry.VerifiedVersion; ``policy``: a DriftPolicy).

    Unknown ``sensitive_columns`` (or the target) raise ValueError naming them, labelled or not; the champion's
    model file is downloaded and loaded (checked against its digest) only for a labelled batch with sensitive
    columns.
    """
    card = champion.card
    columns = fairness.check_sensitive_columns(list(sensitive_columns), batch.columns, target=card.target)
    result = BatchFairness(columns, card.target, batch_rows=len(batch), min_group_rows=policy.min_group_rows)
    if not columns:
        return result
    limits = policy.fairness_limits(card.task)
    labelled = batch[batch[card.target].notna()] if card.target in batch.columns else batch.iloc[:0]
    if labelled.empty:
        return result
    result.labelled, result.labelled_rows = True, len(labelled)
    with tempfile.TemporaryDirectory() as workdir:
        bundle = champion.load_bundle(workdir)
        predicted = predict_in_chunks(bundle.predict, labelled.drop(columns=[card.target]))
    positive = fairness.positive_label(card.task, card.classes)
    y_true = labelled[card.target].to_numpy()
    for column in columns:
        groups = fairness.group_labels(labelled, column).reset_index(drop=True)
        assessed = fairness.assess(
            card.task, y_true, predicted, groups, positive_label=positive, min_group_rows=policy.min_group_rows
        )
        [resampled] = resampled_gaps(
            card.task,
            y_true,
            [predicted],
            groups,
            assessed.judged_groups,
            positive,
            FAIRNESS_SAMPLES,
            min_group_rows=policy.min_group_rows,
        )
        gaps = []
        for metric in fairness.GAP_METRICS[card.task]:
            bounds = percentile_interval(resampled[metric], FAIRNESS_CONFIDENCE) if metric in assessed.gaps else None
            low, high = bounds if bounds is not None else (None, None)
            gaps.append(
                GapAlert(
                    metric, assessed.gaps.get(metric), assessed.worst_group.get(metric, ""), limits[metric], low, high
                )
            )
        result.columns.append(ColumnAlerts(column, assessed, gaps))
    return result


def fairness_metrics(result: BatchFairness) -> dict[str, float]:
    """What the step logs: ``fairness_alert`` (1 or 0) with sensitive columns, ``labelled_rows`` and each gap as
    ``<gap>.<column>``."""
    if not result.sensitive_columns:
        return {}
    figures = {"labelled_rows": result.labelled_rows}
    for column in result.columns:
        for gap in column.gaps:
            if gap.value is not None:
                figures[f"{gap.metric}.{column.column}"] = gap.value
    figures["fairness_alert"] = int(result.alert)
    return figures


def render_fairness(result: BatchFairness) -> str:
    """The fairness section of the summary (Markdown); empty without sensitive columns."""
    if not result.sensitive_columns:
        return ""
    lines = ["", "## Fairness of the champion on this batch", ""]
    if not result.labelled:
        lines.append(f"The batch has no `{result.target}` values: {NO_LABELS}.")
        return "\n".join(lines) + "\n"
    verdict = "**Alert**: a gap is beyond its limit beyond noise." if result.alert else "No gap beyond its limit."
    lines += [
        f"{verdict} {result.labelled_rows} labelled rows of {result.batch_rows}. A gap alerts when it and its whole "
        f"{FAIRNESS_CONFIDENCE:.0%} bootstrap interval are beyond its limit (`drift_policy['max_fairness_gap']`; a "
        f"ratio's limit is a floor); groups of fewer than {result.min_group_rows} labelled rows "
        "(`drift_policy['min_group_rows']`) are not judged.",
    ]
    for column in result.columns:
        groups = ", ".join(
            f"{group.value} ({group.rows}{'' if group.judged else ', not judged'})" for group in column.assessed.groups
        )
        lines += ["", f"### {column.column}", "", f"Groups, largest first (labelled rows): {groups}.", ""]
        if not any(gap.value is not None for gap in column.gaps):
            lines.append("Fewer than two judged groups: no gap.")
            continue
        lines += ["| gap | value | interval | limit | worst group | alert |", "|---|---:|---:|---:|---|---|"]
        for gap in column.gaps:
            if gap.value is None:
                continue
            interval = "" if gap.low is None else f"[{gap.low:.3g}, {gap.high:.3g}]"
            limit = "off" if gap.limit is None else f"{gap.limit:g}"
            alert = "**yes**" if gap.beyond_limit else "no"
            lines.append(f"| {gap.metric} | {gap.value:.3g} | {interval} | {limit} | {gap.worst_group} | {alert} |")
    return "\n".join(lines) + "\n"
