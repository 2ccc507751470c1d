"""The evaluation as one self-contained HTML page: metrics next to the baseline, plots, per-slice metrics, and the
fairness across the groups of each sensitive column.

The KFP UI shows an HTML artifact in a sandboxed iframe and clusters may be offline, so the page has inline CSS,
plots as embedded PNG images (plots.py), no script and no external URL.
"""

from __future__ import annotations

import base64
import html

from components._common.fairness import GAP_DESCRIPTIONS, ColumnFairness
from components._common.scoring import (
    CLASSIFICATION,
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    REGRESSION,
    improvement,
    mape_undefined_reason,
)
from components._common.slices import MAX_SLICES
from components.evaluate_model.logic import Evaluation
from components.evaluate_model.plots import fairness_plot, plots
from model_bundle import ModelCard

METRIC_LABELS = {
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE (fraction)",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "macro F1",
    "roc_auc": "ROC AUC",
    "log_loss": "log loss",
    "selection_rate": "selection rate",
    "true_positive_rate": "true positive rate",
    "false_positive_rate": "false positive rate",
}
GAP_LABELS = {
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equalized_odds_difference": "equalized odds difference",
    "mae_relative_gap": "MAE relative gap",
    "rmse_relative_gap": "RMSE relative gap",
}
# Per-group metrics in column order: the rest of a row is a class's rates (multiclass, tables of their own).
GROUP_METRICS = {
    CLASSIFICATION: ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"),
    REGRESSION: ("mae", "rmse"),
}
CLASS_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
BASELINES = {
    CLASSIFICATION: "the most frequent training class (probabilities: the training class frequencies)",
    REGRESSION: "the training mean",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
td.better { font-weight: bold; background: #e8f4e8; }
td.note, p.note { color: #666; font-style: italic; }
td.text { text-align: left; max-width: 40em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #444; max-width: 36em; }
"""


def render_report(evaluation: Evaluation, model_card: ModelCard | None = None) -> str:
    """The whole page for ``evaluation`` of the model described by ``model_card``."""
    estimator = (model_card and model_card.estimator) or "model"
    title = f"Evaluation of {estimator} predicting {evaluation.target} ({evaluation.task})"
    sections = [
        f"<h1>{_text(title)}</h1>",
        f"<p>{evaluation.test_rows:,} held-out test rows; model trained on "
        f"{_text((model_card and model_card.training_rows) or 'an unknown number of')} rows.</p>",
        "<h2>Metrics</h2>",
        _metrics_table(evaluation),
        "<h2>Plots</h2>",
        "\n".join(_figure(*plot) for plot in plots(evaluation)),
    ]
    if evaluation.slice_column:
        sections += [f"<h2>Metrics per value of {_text(evaluation.slice_column)}</h2>", _slices_table(evaluation)]
    for column in evaluation.fairness:
        sections += [f"<h2>Fairness across the groups of {_text(column.column)}</h2>", _fairness(evaluation, column)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def _omitted(evaluation: Evaluation) -> dict[str, str]:
    """Metrics left out of the whole report, with why: undefined on this test set whatever the model predicts, so
    a column of n/a would say nothing (MAPE with a true value at or near zero)."""
    if evaluation.task != REGRESSION:
        return {}
    reason = mape_undefined_reason(evaluation.actual, f"the test target {evaluation.target}")
    return {} if reason is None else {"mape": reason}


def _shown_metrics(evaluation: Evaluation) -> tuple[str, ...]:
    omitted = _omitted(evaluation)
    return tuple(metric for metric in METRICS_BY_TASK[evaluation.task] if metric not in omitted)


def _metrics_table(evaluation: Evaluation) -> str:
    rows = []
    for metric in _shown_metrics(evaluation):
        model, baseline = evaluation.scores.get(metric), evaluation.baseline_scores.get(metric)
        gain = improvement(metric, model, baseline) if model is not None and baseline is not None else 0.0
        rows.append(
            f"<tr><td>{_text(METRIC_LABELS[metric])}</td>"
            f"<td>{'↑ higher' if HIGHER_IS_BETTER[metric] else '↓ lower'}</td>"
            f"{_cell(model, gain > 0)}{_cell(baseline, gain < 0)}</tr>"
        )
    note = f"The baseline predicts {BASELINES[evaluation.task]} for every row. The better of the two is highlighted."
    if evaluation.task == CLASSIFICATION:
        note += (
            " n/a: undefined on this test set (ROC AUC with a single class present, log loss with a class the model"
            " does not know), or the model gives no class probabilities."
        )
    omitted = "".join(
        f'\n<p class="note">{_text(metric.upper())} omitted: {_text(reason)}.</p>'
        for metric, reason in _omitted(evaluation).items()
    )
    return (
        "<table>\n<tr><th>metric</th><th>better when</th><th>model</th><th>constant baseline</th></tr>\n"
        + "\n".join(rows)
        + f'\n</table>\n<p class="note">{note}</p>{omitted}'
    )


def _slices_table(evaluation: Evaluation) -> str:
    metrics = _shown_metrics(evaluation)
    header = "".join(f"<th>{_text(METRIC_LABELS[metric])}</th>" for metric in metrics)
    rows = [f"<tr><td><em>all test rows</em></td>{_slice_cells(evaluation.test_rows, evaluation.scores, metrics)}"]
    rows += [
        f"<tr><td>{_text(part.value)}</td>{_slice_cells(part.rows, part.scores, metrics)}" for part in evaluation.slices
    ]
    note = (
        f"Largest slices first, at most {MAX_SLICES}; the rest are summarised in one row. "
        f"Slices of fewer than {evaluation.slice_rule.min_slice_rows} rows (gate_policy['min_slice_rows']) are not "
        "scored, nor judged by the gate: their metrics vary too much to be read."
    )
    if any(part.scores is not None and not set(metrics) <= set(part.scores) for part in evaluation.slices):
        note += (
            " n/a: undefined on that slice's rows (MAPE: a true value at or near zero; ROC AUC: a single class; "
            "log loss: a class the model does not know; or no class probabilities)."
        )
    return (
        f"<table>\n<tr><th>{_text(evaluation.slice_column)}</th><th>rows</th>{header}</tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
        f'<p class="note">{note}</p>'
    )


def _slice_cells(rows: int, scores: dict[str, float] | None, metrics, too_few: str = "too few rows to score") -> str:
    if scores is None:
        cells = f'<td class="note" colspan="{len(metrics)}">{too_few}</td>'
    else:
        cells = "".join(_cell(scores.get(metric)) for metric in metrics)
    return f"<td>{rows:,}</td>{cells}</tr>"


def _fairness(evaluation: Evaluation, column: ColumnFairness) -> str:
    """A sensitive column's section: what is judged, the gaps, every group's metrics, the plot, what they mean."""
    judged = len(column.judged_groups)
    if evaluation.task == REGRESSION:
        outcome = "Errors by group, in the target's unit."
    elif evaluation.positive_label is not None:
        outcome = f'Positive outcome ("selected"): {_text(evaluation.positive_label)}, the model\'s second class.'
    else:
        outcome = (
            "Each class in turn is the positive outcome (one-vs-rest); each gap is that of the class where it is "
            f"widest, a class being compared only in the judged groups holding at least {evaluation.min_group_rows:,} "
            "test rows of it (a rare class's rates are noise)."
        )
    parts = [
        f"<p>{len(column.groups):,} groups (missing values form one), {judged:,} judged: those with at least "
        f"{evaluation.min_group_rows:,} test rows (gate_policy['min_group_rows']); the gaps are measured between "
        f"the judged groups, with fairlearn. {outcome}</p>",
        _gaps_table(column, evaluation.min_group_rows),
        _groups_table(evaluation, column),
    ]
    if evaluation.task == CLASSIFICATION and len(evaluation.classes) != 2:
        parts += [_class_rates_table(evaluation, column, rate) for rate in CLASS_RATES]
    plot = fairness_plot(evaluation, column)
    if plot is not None:
        parts.append(_figure(*plot))
    return "\n".join(parts)


def _gaps_table(column: ColumnFairness, min_group_rows: int) -> str:
    if not column.gaps:
        return (
            f'<p class="note">No gap is measured: fewer than two groups have {min_group_rows:,} test rows '
            "(or the gaps are undefined on these rows).</p>"
        )
    rows = [
        f"<tr><td>{_text(GAP_LABELS[gap])}</td>{_cell(value)}"
        f'<td class="text">{_text(column.worst_group.get(gap, ""))}</td>'
        f'<td class="text">{_text(GAP_DESCRIPTIONS[gap])}</td></tr>'
        for gap, value in column.gaps.items()
    ]
    return (
        "<table>\n<tr><th>gap</th><th>value</th><th>worst group</th><th>what it says</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )


def _groups_table(evaluation: Evaluation, column: ColumnFairness) -> str:
    metrics = [metric for metric in GROUP_METRICS[evaluation.task] if metric in column.overall]
    header = "".join(f"<th>{_text(METRIC_LABELS[metric])}</th>" for metric in metrics)
    rows = [f"<tr><td><em>all test rows</em></td>{_slice_cells(evaluation.test_rows, column.overall, metrics)}"]
    listed = column.groups[:MAX_SLICES]
    for group in listed:
        scores = group.metrics if group.judged else None
        rows.append(
            f"<tr><td>{_text(group.value)}</td>{_slice_cells(group.rows, scores, metrics, 'too few rows to judge')}"
        )
    rest = column.groups[len(listed) :]
    if rest:
        judged = sum(group.judged for group in rest)
        rows.append(
            f"<tr><td>({len(rest):,} other groups)</td><td>{sum(group.rows for group in rest):,}</td>"
            f'<td class="note" colspan="{len(metrics)}">not listed; {judged:,} of them judged, in the gaps</td></tr>'
        )
    note = (
        f"Largest groups first, at most {MAX_SLICES}. Groups of fewer than {evaluation.min_group_rows:,} test rows "
        "are not scored, nor counted in the gaps, nor judged by the gate: their rates move too much with every row."
    )
    if evaluation.task == CLASSIFICATION:
        note += (
            " Selection rate: how often the model predicts the positive outcome for the group's rows; true positive "
            "rate: how often it does for the rows whose true label is positive; false positive rate: how often it "
            f"does for the others; n/a: fewer than {evaluation.min_group_rows:,} such rows in the group, too few to "
            "read the rate (nor is it compared)."
        )
    else:
        note += " MAE: mean absolute error; RMSE: root mean squared error (weighs large errors more)."
    return (
        f"<table>\n<tr><th>{_text(column.column)}</th><th>rows</th>{header}</tr>\n"
        + "\n".join(rows)
        + f'\n</table>\n<p class="note">{note}</p>'
    )


def _class_rates_table(evaluation: Evaluation, column: ColumnFairness, rate: str) -> str:
    """A multiclass model's ``rate`` per judged group (rows) and class (columns)."""
    classes = [label for label in evaluation.classes if f"{rate}[{label}]" in column.overall]
    header = "".join(f"<th>{_text(label)}</th>" for label in classes)
    groups = [("<em>all test rows</em>", column.overall)]
    groups += [(_text(group.value), group.metrics) for group in column.groups[:MAX_SLICES] if group.judged]
    rows = [
        f"<tr><td>{name}</td>" + "".join(_cell(metrics.get(f"{rate}[{label}]")) for label in classes) + "</tr>"
        for name, metrics in groups
    ]
    return (
        f"<table>\n<tr><th>{_text(METRIC_LABELS[rate])} by class</th>{header}</tr>\n" + "\n".join(rows) + "\n</table>"
    )


def _cell(value: float | None, better: bool = False) -> str:
    if value is None:
        return '<td class="note">n/a</td>'
    shown = f"{value:,.4f}" if abs(value) < 10_000 else f"{value:,.0f}"
    return f'<td class="better">{shown}</td>' if better else f"<td>{shown}</td>"


def _figure(title: str, png: bytes, caption: str) -> str:
    source = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{source}" alt="{_text(title)}">'
        f"<figcaption><strong>{_text(title)}.</strong> {_text(caption)}</figcaption></figure>"
    )


def _text(value) -> str:
    return html.escape(str(value))
