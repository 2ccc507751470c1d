from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def gate_model(
    model: Input[Model],
    test: Input[Dataset],
    model_name: str,
    baseline_scores: dict,
    reasons: Output[Markdown],
    metrics: Output[Metrics],
    thresholds: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    min_improvement: float = 0.0,
    slice_column: str = "",
    gate_policy: dict = {},  # noqa: B006
    tracking_uri: str = "",
) -> bool:
    """Approves the challenger only if it passes its thresholds and baseline and beats the champion beyond noise.

    The registry's champion is loaded and re-scored on this run's test set, so both models are compared on
    the same rows; the gain's paired bootstrap confidence interval must lie above zero. On a cold start (no
    champion) the same bootstrap compares the challenger with the constant baseline (the model card's
    `baseline_prediction`) on the test rows, whatever their number: the interval of the gain in r2 (classifiers:
    balanced accuracy, on which guessing cannot beat a constant) must lie above zero.

    Args:
        model: The challenger's model directory.
        test: The held-out rows the challenger was evaluated on.
        model_name: Registered model name whose `champion` alias is the current production model.
        baseline_scores: The constant-prediction baseline's test scores (from evaluate_model), the baseline check
            beside a champion comparison.
        reasons: Markdown: the verdict and the rule that decided, every check with its numbers, the confidence
            intervals and the slices.
        metrics: The challenger's primary metric; against a champion, the champion's, the gain and its interval
            (`gain`, `gain_ci_low`, `gain_ci_high`); without one, the gain over the constant baseline and its
            interval (`baseline_gain`, `baseline_gain_ci_low`, `baseline_gain_ci_high`); and `approved` (1 or 0).
        thresholds: Absolute bounds per metric, e.g. `{"r2": 0.6}` (a floor) or `{"rmse": 40000}` (a ceiling).
        min_improvement: How much the primary metric (r2 or f1_macro) must exceed the champion's.
        slice_column: Column whose every slice (of at least `min_slice_rows` rows) must not be worse than under
            the champion by more than `max_slice_regression`; empty: no slice guard.
        gate_policy: Overrides of `confidence` (0.95), `bootstrap_samples` (1000), `min_test_rows` (100, test
            rows needed to compare with a champion; a cold start needs none), `cold_start` (`approve`|`reject`),
            `incompatible_champion` (`reject`|`approve`), `ties` (`keep_champion`|`promote_challenger`),
            `min_slice_rows` (30), `max_slice_regression` (0.02), `seed` (0).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.

    Returns:
        Whether the challenger may become the champion. (The step's only output parameter: kfp.local 2.17
        evaluates a dsl.If condition only on a task's single output.)
    """
    from components._common.datasets import read_dataset
    from components.gate_model.logic import (
        GatePolicy,
        constant_baseline,
        decide,
        load_champion,
        measure,
        render_reasons,
        slices_of,
    )
    from model_bundle import load

    policy = GatePolicy.from_mapping(gate_policy)
    challenger = load(model.path)
    rows = read_dataset(test.path)
    truth = rows[challenger.card.target]
    decision = decide(
        challenger.task,
        truth,
        measure(challenger, rows),
        baseline_scores,
        load_champion(tracking_uri, model_name, challenger, rows),
        thresholds,
        min_improvement,
        policy,
        slices=slices_of(rows, slice_column),
        baseline=constant_baseline(challenger.card, truth),
    )
    report = render_reasons(decision)
    with open(reasons.path, "w") as stream:
        stream.write(report)
    metrics.log_metric(f"challenger_{decision.primary_metric}", decision.challenger_score)
    if decision.interval is not None:
        metrics.log_metric(
            f"champion_{decision.primary_metric}", decision.champion.scored.scores[decision.primary_metric]
        )
        metrics.log_metric("gain", decision.interval.gain)
        metrics.log_metric("gain_ci_low", decision.interval.low)
        metrics.log_metric("gain_ci_high", decision.interval.high)
    if decision.baseline_interval is not None:
        metrics.log_metric("baseline_gain", decision.baseline_interval.gain)
        metrics.log_metric("baseline_gain_ci_low", decision.baseline_interval.low)
        metrics.log_metric("baseline_gain_ci_high", decision.baseline_interval.high)
    metrics.log_metric("approved", int(decision.approved))
    print(report)
    return decision.approved
