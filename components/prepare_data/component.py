"""The prepare_data component: cleans by the cleaning policy, splits, profiles (decisions in logic.py)."""

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
    cleaning_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    # Deprecated, kept for one release; `= None` is how KFP 2.17 compiles an optional parameter.
    drop_duplicates: bool = None,  # noqa: RUF013
    coerce_mixed_types: bool = None,  # noqa: RUF013
    outliers: str = None,  # noqa: RUF013
    outlier_factor: float = None,  # noqa: RUF013
):
    """Cleans the data by its cleaning policy, splits train and test sets, and profiles the training rows.

    Cleaning steps, in order: rows without a target are dropped (a classification target of whole numbers is then
    written as integers: classes 0 and 1, not 0.0 and 1.0); text columns that are mostly numbers are coerced
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
        cleaning_policy: How the data is cleaned, e.g. `{"outliers": "clip"}`; keys `drop_duplicates` (default
            true), `coerce_mixed_types` (false), `outliers` (`keep`), `outlier_factor` (3.0), each described in
            `CleaningPolicy`. Pass validate_data the same dict: it reads `coerce_mixed_types`.
        drop_duplicates: Deprecated: use `cleaning_policy['drop_duplicates']`.
        coerce_mixed_types: Deprecated: use `cleaning_policy['coerce_mixed_types']`.
        outliers: Deprecated: use `cleaning_policy['outliers']`.
        outlier_factor: Deprecated: use `cleaning_policy['outlier_factor']`.
    """
    import json

    from components._common.cleaning import read_cleaning_policy
    from components._common.memory import check_dataset_memory
    from components.prepare_data.logic import prepare_file
    from components.prepare_data.profiling import build_profile_file
    from components.prepare_data.report import render_cleaning_report

    policy = read_cleaning_policy(
        cleaning_policy,
        drop_duplicates=drop_duplicates,
        coerce_mixed_types=coerce_mixed_types,
        outliers=outliers,
        outlier_factor=outlier_factor,
    )
    check_dataset_memory("prepare_data", dataset.path)  # a clear stop now rather than an OOM kill while reading
    prepared = prepare_file(
        dataset.path,
        train.path,
        test.path,
        target=target,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
        cleaning_policy=policy,
    )
    train.metadata.update(prepared.train_info)
    test.metadata.update(prepared.test_info)
    with open(reference_profile.path, "w") as stream:
        json.dump(build_profile_file(train.path, target), stream, indent=2)
    with open(cleaning_report.path, "w") as stream:
        stream.write(render_cleaning_report(prepared))
    metrics.log_metric("train_rows", prepared.train_rows)
    metrics.log_metric("test_rows", prepared.test_rows)
    for step in prepared.cleaning:
        name = ".".join(part for part in (step.policy, step.column) if part)
        metrics.log_metric(f"{name}.{'values' if step.values else 'rows'}", step.values or step.rows)
        print(f"{step.policy} ({step.setting}) {step.column}: {step.rows} rows, {step.values} values {step.detail}")
    print(f"train {prepared.train_rows} rows, test {prepared.test_rows} rows")
