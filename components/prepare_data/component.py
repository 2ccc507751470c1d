from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def prepare_data(
    dataset: Input[Dataset],
    target: str,
    task: str,
    train: Output[Dataset],
    test: Output[Dataset],
    reference_profile: Output[Artifact],
    cleaning_report: Output[Markdown],
    metrics: Output[Metrics],
    test_fraction: float = 0.2,
    seed: int = 42,
    drop_duplicates: bool = True,
    coerce_mixed_types: bool = False,
    outliers: str = "keep",
    outlier_factor: float = 3.0,
):
    """Cleans the data by explicit policy, splits train and test sets, and profiles the training rows.

    Policies, in order: rows without a target are dropped; text columns that are mostly numbers are coerced
    (`coerce_mixed_types`); outliers are kept, clipped or dropped (`outliers`); exact duplicates are dropped
    (`drop_duplicates`). What each one changed is in `cleaning_report` and `metrics`.

    Args:
        dataset: The validated data.
        target: Name of the column to predict.
        task: `regression` or `classification` (classification splits are stratified).
        train: The training rows as Parquet.
        test: The held-out rows as Parquet, scored by evaluation and by the champion/challenger gate.
        reference_profile: JSON distribution of each column of the training rows (quantile histograms, category
            shares): the reference for drift detection, stored with the model.
        cleaning_report: Markdown table of every policy, its setting, and the rows or values it changed.
        metrics: Row counts of each set and of the rows dropped or values changed, by policy.
        test_fraction: Share of rows held out for testing, between 0 and 1.
        seed: Seed of the split; the same seed and data give the same split.
        drop_duplicates: Drop rows that repeat another row exactly.
        coerce_mixed_types: In a text column that is mostly numbers, set the values that are not numbers missing
            and make the column numeric (validate_data must be given the same setting).
        outliers: `keep`, `clip` or `drop` numbers outside `[Q1 - k*IQR, Q3 + k*IQR]` of each numeric feature.
        outlier_factor: `k` of the outlier fences.
    """
    import json

    from components._common.datasets import read_dataset, write_dataset
    from components.prepare_data.logic import prepare, render_cleaning_report
    from model_bundle.profile import build_profile

    prepared = prepare(
        read_dataset(dataset.path),
        target=target,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
        drop_duplicates=drop_duplicates,
        coerce_mixed_types=coerce_mixed_types,
        outliers=outliers,
        outlier_factor=outlier_factor,
    )
    train.metadata.update(write_dataset(prepared.train, train.path))
    test.metadata.update(write_dataset(prepared.test, test.path))
    with open(reference_profile.path, "w") as stream:
        json.dump(build_profile(prepared.train, target), stream, indent=2)
    with open(cleaning_report.path, "w") as stream:
        stream.write(render_cleaning_report(prepared))
    metrics.log_metric("train_rows", len(prepared.train))
    metrics.log_metric("test_rows", len(prepared.test))
    for step in prepared.cleaning:
        name = ".".join(part for part in (step.policy, step.column) if part)
        metrics.log_metric(f"{name}.{'values' if step.values else 'rows'}", step.values or step.rows)
        print(f"{step.policy} ({step.setting}) {step.column}: {step.rows} rows, {step.values} values {step.detail}")
    print(f"train {len(prepared.train)} rows, test {len(prepared.test)} rows")
