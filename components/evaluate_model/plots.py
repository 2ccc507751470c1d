"""The evaluation report's plots as PNG bytes: predicted vs actual and residuals for a regressor; confusion matrix,
ROC curves and calibration for a classifier; per sensitive column, its groups' rates or errors.

Plots are drawn on ``matplotlib.figure.Figure`` objects without pyplot: no global state, nothing to close, no
display backend.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from components._common.fairness import ColumnFairness, GroupScores
from components._common.scoring import CLASSIFICATION, roc_auc_by_class
from components.evaluate_model.logic import Evaluation

# Scatter plots show a random sample of at most this many rows; the fixed seed keeps reports reproducible.
MAX_SCATTER_POINTS = 5000
SAMPLE_SEED = 0
CALIBRATION_BINS = 10
# matplotlib's default x-axis tick count assumes short labels: six-digit values (prices) then overlap.
SCATTER_X_TICKS = 5
# A fairness plot stays readable up to this many groups (the report's table lists more).
MAX_PLOTTED_GROUPS = 20


def plots(evaluation: Evaluation) -> list[tuple[str, bytes, str]]:
    """The plots of ``evaluation``'s task: (title, PNG bytes, caption) each."""
    if evaluation.task == CLASSIFICATION:
        return _classification_plots(evaluation)
    return _regression_plots(evaluation)


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
    labels = [_plain(label) for label in evaluation.confusion_labels]
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


def _plain(text: str) -> str:
    """``text`` for a matplotlib label: a ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def fairness_plot(evaluation: Evaluation, column: ColumnFairness) -> tuple[str, bytes, str] | None:
    """One plot of a sensitive column's judged groups (at most MAX_PLOTTED_GROUPS, the largest): a binary
    classifier's selection, true and false positive rates; a multiclass one's selection rate per class; a
    regressor's MAE. None without a judged group."""
    judged = [group for group in column.groups if group.judged][:MAX_PLOTTED_GROUPS]
    if not judged:
        return None
    shown = "" if len(judged) == len(column.judged_groups) else f" The {MAX_PLOTTED_GROUPS} largest groups shown."
    if evaluation.task != CLASSIFICATION:
        figure = _bars(judged, {"MAE": "mae"}, f"MAE ({_plain(evaluation.target)})", column.overall["mae"])
        caption = f"Mean absolute error per group; the line is the MAE of all test rows.{shown}"
        return (f"Error per group of {column.column}", _png(figure), caption)
    if evaluation.positive_label is not None:
        rates = {"selection rate": "selection_rate", "true positive rate": "true_positive_rate"}
        rates["false positive rate"] = "false_positive_rate"
        figure = _bars(judged, rates, "share of the group's rows")
        positive = evaluation.positive_label
        caption = (
            f"Per group: how often the model predicts {positive} (selection rate), and how often it does for rows "
            f"that are (true positive rate) and are not (false positive rate) {positive}. Equal bars across groups are "
            f"parity.{shown}"
        )
        return (f"Rates per group of {column.column}", _png(figure), caption)
    figure = _selection_heatmap(judged, evaluation.classes)
    caption = (
        "Selection rate per group (rows) and class (columns): how often the model predicts each class for the "
        f"group's rows. Equal columns are parity.{shown}"
    )
    return (f"Selection rates per group of {column.column}", _png(figure), caption)


def _bars(groups: list[GroupScores], metrics: dict[str, str], xlabel: str, overall: float | None = None) -> Figure:
    """Horizontal bars: one cluster per group (largest at the top), one bar per metric (label -> metric name); a
    metric a group lacks (undefined there) has no bar. With ``overall``, a line at that value; without, rates
    (0 to 1)."""
    figure = Figure(figsize=(6.5, 1.2 + 0.35 * len(groups) * len(metrics)))
    axes = figure.add_subplot()
    height = 0.8 / len(metrics)
    positions = np.arange(len(groups))[::-1]
    for index, (label, metric) in enumerate(metrics.items()):
        values = [group.metrics.get(metric, np.nan) for group in groups]
        axes.barh(positions + (len(metrics) - 1 - 2 * index) * height / 2, values, height=height, label=label)
    axes.set_yticks(positions, labels=[_plain(group.value) for group in groups])
    if overall is not None:
        axes.axvline(overall, color="black", linewidth=1, linestyle="--", label="all test rows")
    else:
        axes.set_xlim(0, 1)
    axes.set_xlabel(xlabel)
    # Below the axes: inside, the legend would hide the longest bars.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(metrics) + 1, fontsize="small")
    return figure


def _selection_heatmap(groups: list[GroupScores], classes: list[str]) -> Figure:
    matrix = np.array(
        [[group.metrics.get(f"selection_rate[{label}]", np.nan) for label in classes] for group in groups]
    )
    figure = Figure(figsize=(min(3 + 0.6 * len(classes), 12), min(1.5 + 0.4 * len(groups), 12)))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(len(classes)), labels=[_plain(label) for label in classes], rotation=45, ha="right")
    axes.set_yticks(range(len(groups)), labels=[_plain(group.value) for group in groups])
    axes.set(xlabel="predicted class", ylabel="group")
    for (row, column), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            axes.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
    return figure
