"""The evaluation as one self-contained HTML page: metrics next to the baseline, plots, per-slice metrics.

The KFP UI shows an HTML artifact in a sandboxed iframe and clusters may be offline, so the page has inline CSS,
plots as embedded PNG images, no script and no external URL. Plots are drawn on ``matplotlib.figure.Figure``
objects without pyplot: no global state, nothing to close, no display backend.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from components._common.scoring import (
    CLASSIFICATION,
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    MIN_SLICE_ROWS,
    REGRESSION,
    improvement,
    mape_undefined_reason,
    roc_auc_by_class,
)
from components.evaluate_model.logic import MAX_SLICES, Evaluation
from model_bundle import ModelCard

# Scatter plots show a random sample of at most this many rows; the fixed seed keeps reports reproducible.
MAX_SCATTER_POINTS = 5000
SAMPLE_SEED = 0
CALIBRATION_BINS = 10
# matplotlib's default x-axis tick count assumes short labels: six-digit values (prices) then overlap.
SCATTER_X_TICKS = 5
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
    plots = _classification_plots(evaluation) if evaluation.task == CLASSIFICATION else _regression_plots(evaluation)
    sections = [
        f"<h1>{_text(title)}</h1>",
        f"<p>{evaluation.test_rows:,} held-out test rows; model trained on "
        f"{_text((model_card and model_card.training_rows) or 'an unknown number of')} rows.</p>",
        "<h2>Metrics</h2>",
        _metrics_table(evaluation),
        "<h2>Plots</h2>",
        "\n".join(_figure(*plot) for plot in plots),
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
        f"Slices of fewer than {MIN_SLICE_ROWS} rows are not scored: their metrics vary too much to be read."
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


def _regression_plots(evaluation: Evaluation) -> list[tuple[str, bytes, str]]:
    sample, note = _sample(evaluation.test_rows)
    actual, predicted = evaluation.actual[sample], evaluation.predicted[sample].astype("float64")
    target = _plain(evaluation.target)

    versus = Figure(figsize=(5.5, 4.5))
    axes = versus.add_subplot()
    axes.scatter(actual, predicted, s=8, alpha=0.4, edgecolors="none")
    low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
    axes.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = actual")
    axes.set(xlabel=f"actual {target}", ylabel=f"predicted {target}")
    axes.xaxis.set_major_locator(MaxNLocator(nbins=SCATTER_X_TICKS))
    axes.legend(loc="upper left")

    residuals = Figure(figsize=(5.5, 4.5))
    axes = residuals.add_subplot()
    axes.scatter(predicted, actual - predicted, s=8, alpha=0.4, edgecolors="none")
    axes.axhline(0, color="black", linewidth=1)
    axes.set(xlabel=f"predicted {target}", ylabel="residual (actual − predicted)")
    axes.xaxis.set_major_locator(MaxNLocator(nbins=SCATTER_X_TICKS))
    return [
        ("Predicted vs actual", _png(versus), f"Points on the line are exact predictions. {note}"),
        ("Residuals vs predicted", _png(residuals), f"A pattern or funnel shape means systematic error. {note}"),
    ]


def _classification_plots(evaluation: Evaluation) -> list[tuple[str, bytes, str]]:
    plots = [
        (
            "Confusion matrix",
            _png(_confusion_figure(evaluation)),
            "Rows: true class; columns: predicted class; cells: test rows.",
        )
    ]
    if evaluation.probabilities is None:
        return plots
    by_class = roc_auc_by_class(evaluation.actual, evaluation.probabilities, evaluation.classes)
    if by_class:
        binary = len(evaluation.classes) == 2
        caption = (
            f"Positive class: {evaluation.classes[1]}."
            if binary
            else "One-vs-rest, one curve per class present in the test set."
        )
        plots.append(("ROC curves", _png(_roc_figure(evaluation, by_class, binary)), caption))
    plots.append(("Calibration", _png(_calibration_figure(evaluation)), _calibration_caption(evaluation)))
    return plots


def _confusion_figure(evaluation: Evaluation) -> Figure:
    matrix = np.array(evaluation.confusion_matrix)
    labels = [_plain(label) for label in evaluation.classes]
    size = min(4 + 0.45 * len(labels), 12)
    figure = Figure(figsize=(size, size * 0.85))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels=labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=labels)
    axes.set(xlabel="predicted class", ylabel="true class")
    font_size = max(5, 10 - len(labels) // 5)
    for (row, column), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        axes.text(
            column, row, str(count), ha="center", va="center", fontsize=font_size, color="white" if dark else "black"
        )
    return figure


def _roc_figure(evaluation: Evaluation, by_class: dict[str, float], binary: bool) -> Figure:
    figure = Figure(figsize=(5.5, 4.5))
    axes = figure.add_subplot()
    shown = [evaluation.classes[1]] if binary else list(by_class)
    for label in shown:
        column = evaluation.classes.index(label)
        fpr, tpr, _ = roc_curve(evaluation.actual == label, evaluation.probabilities[:, column])
        axes.plot(fpr, tpr, linewidth=1.5, label=f"{_plain(label)} (AUC {by_class[label]:.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right", fontsize="small")
    return figure


def _calibration_figure(evaluation: Evaluation) -> Figure:
    confidence, correct = _calibration_inputs(evaluation)
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    filled = counts > 0
    mean_confidence = np.bincount(bins, weights=confidence, minlength=CALIBRATION_BINS)[filled] / counts[filled]
    observed = np.bincount(bins, weights=correct, minlength=CALIBRATION_BINS)[filled] / counts[filled]

    figure = Figure(figsize=(5.5, 4.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    axes.plot(mean_confidence, observed, marker="o", linewidth=1.5, label="model")
    for x, y, count in zip(mean_confidence, observed, counts[filled], strict=True):
        axes.annotate(f"{count:,}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if len(evaluation.classes) == 2:
        axes.set(xlabel="predicted probability", ylabel="observed frequency")
    else:
        axes.set(xlabel="confidence (highest class probability)", ylabel="accuracy")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="upper left", fontsize="small")
    return figure


def _calibration_inputs(evaluation: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Binary: the positive class's probability and whether the row is positive. Multiclass: top-label
    calibration (one curve that stays readable for any number of classes): the highest probability and whether
    that class is the true one."""
    probabilities, classes = evaluation.probabilities, np.array(evaluation.classes)
    if len(classes) == 2:
        return probabilities[:, 1], (evaluation.actual == classes[1]).astype("float64")
    top = probabilities.argmax(axis=1)
    return probabilities.max(axis=1), (classes[top] == evaluation.actual).astype("float64")


def _calibration_caption(evaluation: Evaluation) -> str:
    if len(evaluation.classes) == 2:
        subject = f"how often rows are of class {evaluation.classes[1]}, against its predicted probability"
    else:
        subject = "how often the most probable class is right, against its probability (top-label calibration)"
    return (
        f"Shows {subject}, in {CALIBRATION_BINS} equal-width bins (numbers: rows per bin). "
        "Points on the diagonal are well calibrated."
    )


def _sample(rows: int) -> tuple[np.ndarray, str]:
    if rows <= MAX_SCATTER_POINTS:
        return np.arange(rows), ""
    chosen = np.random.default_rng(SAMPLE_SEED).choice(rows, size=MAX_SCATTER_POINTS, replace=False)
    return np.sort(chosen), f"Shown: {MAX_SCATTER_POINTS:,} of {rows:,} rows, drawn at random."


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" entry: the bytes then do not change with the matplotlib version.
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _text(value) -> str:
    return html.escape(str(value))


def _plain(text: str) -> str:
    """``text`` for a matplotlib label: a ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")
