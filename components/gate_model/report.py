"""The gate's decision as Markdown (the step's ``reasons`` artifact): the verdict and the rule that decided, every
check with its numbers (failed ones first), the intervals, the slice table and the fairness gaps."""

from __future__ import annotations

from components.gate_model.decision import Check, GateDecision
from components.gate_model.fairness_guard import ColumnComparison


def check_line(check: Check) -> str:
    """One check as the reasons list it, e.g. ``FAILED champion v3: r2 0.81 vs 0.84, ...: significantly worse``."""
    name = f"{check.name} {check.subject}" if check.subject else check.name
    return f"{'passed' if check.passed else 'FAILED'} {name}: {check.detail}"


def render_reasons(decision: GateDecision) -> str:
    """The decision as Markdown: the verdict and the rule that decided, every check with its numbers, the
    intervals and the slices."""
    verdict = "approved" if decision.approved else "rejected"
    lines = [
        f"# Challenger {verdict}",
        "",
        f"**Decided by:** {decision.rule}.",
        "",
        f"Primary metric `{decision.primary_metric}`: {decision.challenger_score:.4g} "
        f"on {decision.test_rows} test rows.",
        "",
    ]
    # Failed checks first, each group in the order the checks were made.
    lines += [f"- {check_line(check)}" for check in sorted(decision.checks, key=lambda check: check.passed)]
    interval = decision.baseline_interval
    if interval is not None:
        baseline = decision.baseline
        lines += [
            "",
            "## Challenger vs constant baseline",
            "",
            f"The baseline predicts {baseline.described()} for every row"
            + (f"; {baseline.note}" if baseline.note else "")
            + f". Paired bootstrap over {interval.samples} resamples of the test rows: gain in "
            f"{decision.baseline_metric} {interval.gain:+.4g}, "
            f"{interval.confidence:.0%} confidence interval [{interval.low:+.4g}, {interval.high:+.4g}]; the "
            "challenger beats the baseline beyond noise when the interval lies above zero.",
        ]
    interval = decision.interval
    if interval is not None:
        lines += [
            "",
            "## Challenger vs champion",
            "",
            f"Paired bootstrap over {interval.samples} resamples of the test rows: gain {interval.gain:+.4g}, "
            f"{interval.confidence:.0%} confidence interval [{interval.low:+.4g}, {interval.high:+.4g}].",
        ]
    if decision.slices:
        lines += [
            "",
            "## Slices",
            "",
            f"| slice | rows | challenger {decision.primary_metric} | champion {decision.primary_metric} |",
            "|---|---:|---:|---:|",
        ]
        for result in decision.slices:
            if result.judged:
                lines.append(f"| {result.value} | {result.rows} | {result.challenger:.4g} | {result.champion:.4g} |")
            else:
                lines.append(f"| {result.value} | {result.rows} | too few rows to judge | |")
        lines += [
            "",
            f"Largest slices first. Slices of fewer than {decision.min_slice_rows} rows "
            "(gate_policy['min_slice_rows']) are not judged, nor scored in the evaluation report: their metrics vary "
            "too much to be read.",
        ]
    if decision.fairness:
        lines += _fairness_section(decision)
    return "\n".join(lines) + "\n"


def _fairness_section(decision: GateDecision) -> list[str]:
    """Per sensitive column: its groups, then each gap of both models, the widening and the tolerance."""
    lines = [
        "",
        "## Fairness",
        "",
        "Per sensitive column, the gap between its groups for each model on the same test rows (0 is parity for a "
        "difference, 1 for a ratio, whose widening is how much it dropped). The challenger is refused when it widens "
        "a gap by more than "
        "`gate_policy['max_fairness_gap']` and the paired bootstrap interval of the widening lies above zero. Groups "
        f"of fewer than {decision.min_group_rows} rows (gate_policy['min_group_rows']) are not judged: their rates "
        "vary too much to be read.",
    ]
    for column in decision.fairness:
        lines += ["", f"### {column.column}", "", _groups_line(column)]
        if not any(gap.challenger is not None for gap in column.gaps):
            lines += ["", "Fewer than two judged groups: no gap."]
            continue
        lines += [
            "",
            "| gap | challenger | champion | widening [CI] | tolerance | worst group (challenger) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for gap in column.gaps:
            widening = ""
            if gap.interval is not None:
                interval = gap.interval
                widening = f"{gap.widening:+.4g} [{-interval.high:+.4g}, {-interval.low:+.4g}]" + (
                    " **refused**" if gap.refused else ""
                )
            tolerance = "" if column.champion is None else ("off" if gap.tolerance is None else f"{gap.tolerance:g}")
            lines.append(
                f"| {gap.metric} | {_number(gap.challenger)} | {_number(gap.champion)} | {widening} | {tolerance} "
                f"| {gap.worst_group} |"
            )
        if column.champion is None:
            lines += ["", "No champion to compare with: the gaps are reported, not judged."]
    return lines


def _groups_line(column: ColumnComparison) -> str:
    groups = [
        f"{group.value} ({group.rows} rows{'' if group.judged else ', not judged'})"
        for group in column.challenger.groups
    ]
    return "Groups, largest first: " + ", ".join(groups) + "."


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
