"""The evaluate_model KFP component: reads the model, the train and test rows, writes the metrics, the classifier's
curves and the HTML report; the evaluation is in logic.py (fairness: components._common.fairness), the page in
report.py."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def evaluate_model(
    model: Input[Model],
    train: Input[Dataset],
    test: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    slice_column: str = "",
    gate_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    sensitive_columns: list = [],  # noqa: B006
) -> NamedTuple("Outputs", [("scores", dict), ("baseline_scores", dict)]):
    """Scores the model on the held-out test set, and a constant-prediction baseline beside it.

    Args:
        model: The trained model directory.
        train: The training rows (only the target is read, to fit the baseline).
        test: The held-out rows, each with its target value (a row without one stops the step, naming it).
        metrics: Test scores (regression: r2, rmse, mae and mape; classification: accuracy, balanced_accuracy,
            f1_macro and, for a model with class probabilities, roc_auc and log_loss), the baseline's scores
            prefixed `baseline_`, and test_rows. A metric undefined on the test set is left out: mape when a true
            value is at or near zero (within 1% of the median |value|; the report says how many), roc_auc with a
            single class present, log_loss with a class the model does not know. Per sensitive column, each gap
            between its groups as `fairness/<column>/<gap>` (classification: demographic_parity_difference,
            demographic_parity_ratio, equalized_odds_difference; regression: mae_relative_gap,
            rmse_relative_gap), left out with fewer than two judged groups.
        classification_metrics: Confusion matrix (the model's classes, then any label of the test rows it does
            not know: every test row is counted) and ROC curve (binary: the positive class, the second of the
            model's classes; multiclass: micro-averaged one-vs-rest) for classifiers; empty for regression.
        report: Self-contained HTML page: metrics beside the baseline; plots (regression: predicted vs actual,
            residuals; classification: confusion matrix, ROC curves, calibration); per-slice metrics; per sensitive
            column, a fairness section: every group's rows and metrics (classification: selection rate, true and
            false positive rates, accuracy; regression: MAE and RMSE), the gaps with the group at the unfavourable
            end, what each number means, and a plot of the groups.
        slice_column: Feature column whose values split the test rows into slices scored separately (missing
            values form their own slice; slices under `gate_policy['min_slice_rows']` rows are listed, not scored);
            empty for no slices.
        gate_policy: The gate's policy, the same dict gate_model takes: only its `min_slice_rows` (30) and
            `min_group_rows` (30) are read here, so the report scores exactly the slices and groups the gate
            judges.
        sensitive_columns: Columns whose groups the model's fairness is measured across, with fairlearn, e.g.
            `["sex"]`: any column of the test rows but the target, excluded columns included (a model is audited on
            attributes it does not use); missing values form their own group, and groups under
            `gate_policy['min_group_rows']` test rows are listed, not scored. A binary classifier's positive
            outcome is its second class; a multiclass one is judged one class at a time (the worst class's gap).
            A name the test rows do not have stops the step.

    Returns:
        scores: The test scores by metric name.
        baseline_scores: The constant-prediction baseline's test scores by metric name.
    """
    from components._common.datasets import read_dataset
    from components._common.fairness import min_group_rows_from_gate_policy
    from components._common.slices import SliceRule
    from components.evaluate_model.logic import evaluate
    from components.evaluate_model.report import render_report
    from model_bundle import load

    rule = SliceRule.from_gate_policy(gate_policy)
    min_group_rows = min_group_rows_from_gate_policy(gate_policy)
    bundle = load(model.path)
    evaluation = evaluate(
        bundle,
        read_dataset(train.path, columns=[bundle.card.target]),  # the baseline needs the training targets only
        read_dataset(test.path),
        slice_column,
        rule,
        sensitive_columns=sensitive_columns,
        min_group_rows=min_group_rows,
    )
    for name, value in evaluation.scores.items():
        metrics.log_metric(name, value)
    for name, value in evaluation.baseline_scores.items():
        metrics.log_metric(f"baseline_{name}", value)
    metrics.log_metric("test_rows", evaluation.test_rows)
    for column in evaluation.fairness:
        for gap, value in column.gaps.items():
            metrics.log_metric(f"fairness/{column.column}/{gap}", value)
    if evaluation.confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(evaluation.confusion_labels, evaluation.confusion_matrix)
    if evaluation.roc_curve is not None:
        curve = evaluation.roc_curve
        classification_metrics.log_roc_curve(curve.fpr, curve.tpr, curve.thresholds)
    with open(report.path, "w", encoding="utf-8") as stream:
        stream.write(render_report(evaluation, bundle.card))
    print(f"test scores {evaluation.scores}; baseline {evaluation.baseline_scores}")
    for column in evaluation.fairness:
        print(f"fairness across {column.column}: gaps {column.gaps}; worst groups {column.worst_group}")
    return (evaluation.scores, evaluation.baseline_scores)
