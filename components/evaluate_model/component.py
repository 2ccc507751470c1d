from typing import NamedTuple

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def evaluate_model(
    model: Input[Model],
    train: Input[Dataset],
    test: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
) -> NamedTuple("Outputs", [("scores", dict), ("baseline_scores", dict)]):
    """Scores the model on the held-out test set, and a constant-prediction baseline beside it.

    Args:
        model: The trained model directory.
        train: The training rows (only the target is read, to fit the baseline).
        test: The held-out rows.
        metrics: Test scores (regression: r2, rmse, mae; classification: accuracy, balanced_accuracy, f1_macro)
            and the baseline's scores prefixed `baseline_`.
        classification_metrics: Confusion matrix for classifiers (empty for regression).

    Returns:
        scores: The test scores by metric name.
        baseline_scores: The constant-prediction baseline's test scores by metric name.
    """
    from components._common.datasets import read_dataset
    from components.evaluate_model.logic import evaluate
    from model_bundle import load

    evaluation = evaluate(load(model.path), read_dataset(train.path), read_dataset(test.path))
    for name, value in evaluation.scores.items():
        metrics.log_metric(name, value)
    for name, value in evaluation.baseline_scores.items():
        metrics.log_metric(f"baseline_{name}", value)
    metrics.log_metric("test_rows", evaluation.test_rows)
    if evaluation.confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(evaluation.classes, evaluation.confusion_matrix)
    print(f"test scores {evaluation.scores}; baseline {evaluation.baseline_scores}")
    return (evaluation.scores, evaluation.baseline_scores)
