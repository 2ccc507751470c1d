from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def validate_data(
    dataset: Input[Dataset],
    target: str,
    schema: Output[Artifact],
    report: Output[Markdown],
    metrics: Output[Metrics],
    task: str = "auto",
    model_name: str = "",
    tracking_uri: str = "",
    schema_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    coerce_mixed_types: bool = False,
    exclude_columns: list = [],  # noqa: B006
    column_policy: dict = {},  # noqa: B006
) -> NamedTuple("Outputs", [("task", str)]):
    """Infers the data's schema, compares it with the champion's, and stops the run when a model cannot be trained
    on the data or a schema check whose policy is `fail` finds a difference.

    Data checks (always fail), naming the column: no rows, a missing target column, a target without values or
    with a single value, a regression task on a text target, no feature column, a column without values, a text
    column that mixes in numbers, an infinite number. Schema checks against the champion's schema: `columns`
    (missing or new), `types`, `nulls`, `domain` (unseen categories), `range`, `uniqueness`; excluded columns are
    only held to `uniqueness`. Column checks: `identifiers` (unique integers in sequence, unique text) and
    `leakage` (a feature that alone predicts the target almost perfectly, or without which a too-good fit of the
    whole table collapses; on a sample of at most 2000 rows).

    Args:
        dataset: The ingested data.
        target: Name of the column to predict.
        schema: The inferred schema as JSON (per column: role - feature, target or excluded, with why -, type,
            kind, missing values, range or domain, uniqueness); it travels with the trained model, which uses the
            feature columns only, and becomes the reference when that model is champion.
        report: Markdown report: every check with its result, each problem and warning with counts and
            examples, the excluded columns and why, every feature's leakage scores, and the schema.
        metrics: Rows, columns, problems, warnings, excluded columns, suspected leakage and the fraction of
            missing values per column.
        task: `regression`, `classification` or `auto` (text, booleans and up to 20 integer labels are
            classification).
        model_name: Registered model whose champion's schema the data is compared with; empty skips the schema
            checks, as does a model without a champion (cold start).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        schema_policy: Per schema check, `fail`, `warn` or `ignore`, e.g. `{"domain": "fail"}`. Defaults:
            columns and types fail; nulls, domain, range and uniqueness warn.
        coerce_mixed_types: A text column that is mostly numbers is a warning, and prepare_data sets its other
            values missing, instead of a failure.
        exclude_columns: Columns that are no features (the model neither trains on them nor needs them in
            requests), e.g. `["customer_id", "refund_amount"]`; a name the data does not have, or the target,
            stops the run.
        column_policy: `{"identifiers": "exclude" | "fail" | "keep", "leakage": "fail" | "warn" | "ignore"}`.
            Defaults: identifiers are excluded from the features with a warning; suspected target leakage stops
            the run, naming the columns and the `exclude_columns` to rerun with.

    Returns:
        task: The resolved task, `regression` or `classification`.
    """
    import json

    from components._common.datasets import read_dataset
    from components._common.registry import champion_document
    from components.validate_data.logic import render_report, validate
    from model_bundle import SCHEMA_FILE

    reference, reference_name = champion_document(tracking_uri, model_name, SCHEMA_FILE) if model_name else (None, "")
    validation = validate(
        read_dataset(dataset.path),
        target=target,
        task=task,
        reference=reference,
        reference_name=reference_name,
        policy=schema_policy,
        coerce_mixed_types=coerce_mixed_types,
        exclude_columns=exclude_columns,
        column_policy=column_policy,
    )
    with open(schema.path, "w") as stream:
        json.dump(validation.schema, stream, indent=2)
    with open(report.path, "w") as stream:
        stream.write(render_report(validation, target))
    metrics.log_metric("rows", validation.schema["rows"])
    metrics.log_metric("columns", len(validation.schema["columns"]))
    metrics.log_metric("problems", len(validation.failures))
    metrics.log_metric("warnings", len(validation.warnings))
    metrics.log_metric("excluded_columns", len(validation.excluded))
    if validation.leakage is not None and not validation.leakage.not_run:
        metrics.log_metric("leakage_suspects", len(validation.leakage.suspects))
        metrics.log_metric(f"leakage_whole_{validation.leakage.metric}", round(validation.leakage.whole, 6))
    for column in validation.schema["columns"]:
        metrics.log_metric(f"null_fraction.{column['name']}", round(column["null_fraction"], 6))
    for warning in validation.warnings:
        print(f"warning [{warning.check}] {warning.message}")
    for name, reason in validation.excluded.items():
        print(f"excluded column {name!r}: {reason}")
    validation.raise_for_problems()
    print(f"validation passed: task {validation.task}; {reference_name or 'no reference schema'}")
    return (validation.task,)
