"""The evaluation as one self-contained HTML page: metrics next to the baseline, plots, per-slice metrics.

The KFP UI shows an HTML artifact in a sandboxed iframe and clusters may be offline, so the page has inline CSS,
plots as embedded PNG images (plots.py), no script and no external URL.
"""

from __future__ import annotations

import base64
import html

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
from components.evaluate_model.plots import plots
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
}
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


def _slice_cells(rows: int, scores: dict[str, float] | None, metrics: tuple[str, ...]) -> str:
    if scores is None:
        cells = f'<td class="note" colspan="{len(metrics)}">too few rows to score</td>'
    else:
        cells = "".join(_cell(scores.get(metric)) for metric in metrics)
    return f"<td>{rows:,}</td>{cells}</tr>"


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
