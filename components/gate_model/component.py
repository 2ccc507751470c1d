from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def gate_model(
    test: Input[Dataset],
    target: str,
    task: str,
    model_name: str,
    challenger_scores: dict,
    baseline_scores: dict,
    reasons: Output[Markdown],
    thresholds: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    min_improvement: float = 0.0,
    tracking_uri: str = "",
) -> bool:
    """Approves the challenger only if it passes its thresholds, beats a constant baseline and the champion.

    The registry's current champion is scored on this run's test set, so both models are compared on the
    same rows.

    Args:
        test: The held-out rows the challenger was scored on.
        target: Name of the column to predict.
        task: `regression` or `classification`.
        model_name: Registered model name whose `champion` alias is the current production model.
        challenger_scores: The challenger's test scores (from evaluate_model).
        baseline_scores: The constant-prediction baseline's test scores (from evaluate_model).
        reasons: Markdown list of every check, passed or failed, with the numbers (recorded in the registry).
        thresholds: Absolute bounds per metric, e.g. `{"r2": 0.6}` (a floor) or `{"rmse": 40000}` (a ceiling).
        min_improvement: How much the primary metric (r2 or f1_macro) must exceed the champion's.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.

    Returns:
        Whether the challenger may become the champion. (The step's only output parameter: kfp.local 2.17
        evaluates a dsl.If condition only on a task's single output.)
    """
    from components._common.datasets import read_dataset
    from components.gate_model.logic import decide, render_reasons, score_champion

    champion = score_champion(tracking_uri, model_name, read_dataset(test.path), target)
    decision = decide(task, challenger_scores, baseline_scores, champion, thresholds, min_improvement)
    report = render_reasons(decision)
    with open(reasons.path, "w") as stream:
        stream.write(report)
    print(report)
    return decision.approved
