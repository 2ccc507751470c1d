"""The detect_drift KFP component: reads the batch, the champion's reference and the policy, writes the report,
summary and metrics; the decisions are in logic.py (drift) and fairness_monitor.py (fairness on labelled batches)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def detect_drift(
    dataset: Input[Dataset],
    model_name: str,
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
    drift_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    tracking_uri: str = "",
    sensitive_columns: list = [],  # noqa: B006
) -> NamedTuple("Outputs", [("Output", bool), ("fairness_alert", bool)]):
    """Tests every feature of new data against the champion's training rows; says whether the data drifted and,
    on a labelled batch, whether the champion treats the groups of a sensitive column too differently.

    The reference is the sample of training rows in the champion's `reference_profile.json`; the features and
    their types come from its model card. Each feature gets a test chosen by type and reference size (p-value
    tests up to 1,000 rows, Bonferroni-corrected; distances above), and the data drifts when at least
    `drift_share` of the features do. When the batch holds labels (the champion's target column) and
    `sensitive_columns` are set, the champion predicts the labelled rows and its fairness gaps between each column's
    groups (those of evaluate_model and the gate) are held to absolute limits.

    Args:
        dataset: The new batch (its target, if present, is not tested for drift; it is the truth the fairness gaps
            are measured against).
        model_name: Registered model whose `champion` is the reference.
        report: Evidently's interactive HTML drift report.
        summary: Markdown: the verdict, the policy and, per feature, the test, score, threshold and unseen
            categories; with `sensitive_columns`, the champion's fairness gaps on the batch (or "no labels: fairness
            not assessed").
        metrics: `drifted_share`, `drifted_features`, `dataset_drift` (1 or 0) and `drift_score.<feature>`; with
            `sensitive_columns`, `labelled_rows`, `<gap>.<column>` for each gap on a labelled batch and
            `fairness_alert` (1 or 0).
        drift_policy: Overrides of the `DriftPolicy` keys `drift_share`, `alpha`, `correction`
            (`bonferroni`|`none`), `distance_threshold`, `min_rows`, `max_fairness_gap` (absolute limits per gap
            metric: 0.1 for the demographic parity and equalized odds differences, 0.8 for the demographic parity
            ratio, a floor, 0.5 for a regressor's relative error gaps; null turns one off) and `min_group_rows`
            (30) (each with its default in `DriftPolicy`).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        sensitive_columns: Columns of the batch holding the groups to compare (e.g. sex, age band), features or
            not; an unknown name stops the step.

    Returns:
        Output: Whether the data drifted. (Named `Output`, the name of a single return value, because kfp.local
            2.17 resolves a dsl.If condition only on an output of that name: the monitoring pipeline branches on it.)
        fairness_alert: Whether a judged fairness gap of the champion on the labelled batch is beyond its limit,
            beyond noise (false without labels or `sensitive_columns`): the monitoring alert condition.
    """
    from collections import namedtuple

    from components._common.datasets import read_dataset
    from components.detect_drift.fairness_monitor import assess_batch, fairness_metrics, render_fairness
    from components.detect_drift.logic import DriftPolicy, detect, monitored_champion, reference_of, render_summary

    policy = DriftPolicy.from_mapping(drift_policy)
    champion = monitored_champion(tracking_uri, model_name)
    batch = read_dataset(dataset.path)
    fairness = assess_batch(champion, batch, sensitive_columns, policy)  # checks the column names first
    reference, features = reference_of(champion)
    result = detect(reference, batch, features, policy)
    result.snapshot.save_html(report.path)
    text = render_summary(result) + render_fairness(fairness)
    with open(summary.path, "w") as stream:
        stream.write(text)
    for feature in result.features:
        metrics.log_metric(f"drift_score.{feature.column}", feature.score)
    metrics.log_metric("drifted_features", len(result.drifted_features))
    metrics.log_metric("drifted_share", result.drifted_share)
    metrics.log_metric("dataset_drift", int(result.dataset_drift))
    for name, value in fairness_metrics(fairness).items():
        metrics.log_metric(name, value)
    print(text)
    return namedtuple("Outputs", ["Output", "fairness_alert"])(result.dataset_drift, fairness.alert)
