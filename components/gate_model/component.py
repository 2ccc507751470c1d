"""The gate_model KFP component: reads the challenger, the test rows and the policy, writes the reasons and metrics;
the decision is made by logic.gate."""

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
    slice_column: str = "",
    gate_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    tracking_uri: str = "",
    sensitive_columns: list = [],  # noqa: B006
    thresholds: dict = None,  # noqa: RUF013 (KFP compiles `x: T = None` as an optional parameter)
    min_improvement: float = None,  # noqa: RUF013
) -> bool:
    """Approves the challenger only if it passes its thresholds and baseline and beats the champion beyond noise.

    The registry's champion (its card and documents verified against their digests) is loaded and re-scored on
    this run's test set, so both models are compared on the same rows; the gain's paired bootstrap confidence
    interval must lie above zero. On a cold start (no champion) the same bootstrap compares the challenger with
    the constant baseline (the model card's `baseline_prediction`) on the test rows, whatever their number: the
    interval of the gain in r2 (classifiers: balanced accuracy, on which guessing cannot beat a constant) must lie
    above zero. With `sensitive_columns`, a challenger that widens the gap between a column's groups (fairlearn's
    demographic parity and equalized odds; a regressor's error gaps) beyond the champion's by more than
    `gate_policy['max_fairness_gap']`, beyond noise, is refused: a model that scores better on labels biased
    against a group does not slip through.

    Args:
        model: The challenger's model directory.
        test: The held-out rows the challenger was evaluated on.
        model_name: Registered model name whose `champion` alias is the current production model.
        baseline_scores: The constant-prediction baseline's test scores (from evaluate_model), the baseline check
            beside a champion comparison.
        reasons: Markdown: the verdict and the rule that decided, every check with its numbers, the confidence
            intervals, the slices and the fairness gaps.
        metrics: The challenger's primary metric; against a champion, the champion's, the gain and its interval
            (`gain`, `gain_ci_low`, `gain_ci_high`); without one, the gain over the constant baseline and its
            interval (`baseline_gain`, `baseline_gain_ci_low`, `baseline_gain_ci_high`); per sensitive column
            and gap, `challenger_<gap>.<column>` and `champion_<gap>.<column>`; and `approved` (1 or 0).
        slice_column: Feature column whose every slice (of at least `gate_policy['min_slice_rows']` rows) must not
            be worse than under the champion by more than `gate_policy['max_slice_regression']`; empty: no slice
            guard.
        gate_policy: Overrides of `thresholds` ({}: absolute bounds per metric, e.g. `{"r2": 0.6}`, a floor, or
            `{"rmse": 40000}`, a ceiling), `min_improvement` (0.0, the primary metric's required gain over the
            champion), `confidence` (0.95), `bootstrap_samples` (1000), `min_test_rows` (100, test rows needed
            to compare with a champion; a cold start needs none), `cold_start` (`approve`|`reject`),
            `incompatible_champion` (`reject`|`approve`), `ties` (`keep_champion`|`promote_challenger`),
            `min_slice_rows` (30), `max_slice_regression` (0.02), `max_fairness_gap` (per gap metric, how much
            wider than the champion's the challenger's gap may be: defaults 0.05 for the demographic parity and
            equalized odds differences, 0.1 for the demographic parity ratio and the regressors' relative error
            gaps; null turns one off: see `GatePolicy`), `min_group_rows` (30, smaller groups are not judged),
            `seed` (0).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        sensitive_columns: Columns of the test set holding the groups to compare (e.g. sex, age band), features
            or excluded columns; each turns the fairness guard on. An unknown name stops the step.
        thresholds: Deprecated: use `gate_policy['thresholds']`.
        min_improvement: Deprecated: use `gate_policy['min_improvement']`.

    Returns:
        Whether the challenger may become the champion. (The step's only output parameter: kfp.local 2.17
        evaluates a dsl.If condition only on a task's single output.)
    """
    from components._common.datasets import read_dataset
    from components.gate_model.logic import decision_metrics, gate
    from components.gate_model.policy import GatePolicy
    from components.gate_model.report import render_reasons
    from model_bundle import load

    policy = GatePolicy.from_mapping(gate_policy, thresholds=thresholds, min_improvement=min_improvement)
    decision = gate(
        load(model.path),
        read_dataset(test.path),
        model_name,
        baseline_scores,
        policy,
        slice_column,
        tracking_uri,
        sensitive_columns,
    )
    report = render_reasons(decision)
    with open(reasons.path, "w") as stream:
        stream.write(report)
    for name, value in decision_metrics(decision).items():
        metrics.log_metric(name, value)
    print(report)
    return decision.approved
