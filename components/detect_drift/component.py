"""The detect_drift KFP component: reads the batch, the champion's reference and the policy, writes the report,
summary and metrics; the decisions are in logic.py."""

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
) -> bool:
    """Tests every feature of new data against the champion's training rows; says whether the data drifted.

    The reference is the sample of training rows in the champion's `reference_profile.json`; the features and
    their types come from its model card. Each feature gets a test chosen by type and reference size (p-value
    tests up to 1,000 rows, Bonferroni-corrected; distances above), and the data drifts when at least
    `drift_share` of the features do.

    Args:
        dataset: The new batch (its target, if present, is ignored).
        model_name: Registered model whose `champion` is the reference.
        report: Evidently's interactive HTML drift report.
        summary: Markdown: the verdict, the policy and, per feature, the test, score, threshold and unseen
            categories.
        metrics: `drifted_share`, `drifted_features`, `dataset_drift` (1 or 0) and `drift_score.<feature>`.
        drift_policy: Overrides of the `DriftPolicy` keys `drift_share`, `alpha`, `correction`
            (`bonferroni`|`none`), `distance_threshold` and `min_rows` (each with its default in `DriftPolicy`).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.

    Returns:
        Whether the data drifted (the step's only output parameter, so a dsl.If can branch on it locally).
    """
    from components._common.datasets import read_dataset
    from components.detect_drift.logic import DriftPolicy, champion_reference, detect, render_summary

    policy = DriftPolicy.from_mapping(drift_policy)
    reference, features = champion_reference(tracking_uri, model_name)
    result = detect(reference, read_dataset(dataset.path), features, policy)
    result.snapshot.save_html(report.path)
    text = render_summary(result)
    with open(summary.path, "w") as stream:
        stream.write(text)
    for feature in result.features:
        metrics.log_metric(f"drift_score.{feature.column}", feature.score)
    metrics.log_metric("drifted_features", len(result.drifted_features))
    metrics.log_metric("drifted_share", result.drifted_share)
    metrics.log_metric("dataset_drift", int(result.dataset_drift))
    print(text)
    return result.dataset_drift
