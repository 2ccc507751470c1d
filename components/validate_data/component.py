"""The validate_data component: reads the dataset and the champion's schema, writes the schema, report and
metrics, and stops the run on failures (decisions in logic.py, the policy in policy.py, the report in report.py)."""

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
    validation_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    cleaning_policy: dict = {},  # noqa: B006
    exclude_columns: list = [],  # noqa: B006
    sensitive_columns: list = [],  # noqa: B006
    # Deprecated, kept for one release; `= None` is how KFP 2.17 compiles an optional parameter.
    schema_policy: dict = None,  # noqa: RUF013
    column_policy: dict = None,  # noqa: RUF013
    coerce_mixed_types: bool = None,  # noqa: RUF013
) -> NamedTuple("Outputs", [("task", str)]):
    """Infers the data's schema, compares it with the champion's, and stops the run when a model cannot be trained
    on the data or a schema check whose policy is `fail` finds a difference.

    Data checks (always fail), naming the column: no rows, a missing target column, a target without values or
    with a single value, a regression task on a text target, no feature column, a column without values, a text
    column that mixes in numbers, an infinite number. Schema checks against the champion's schema (its verified
    `schema.json`; a file that fails its digest stops the step, naming it): `columns` (missing or new), `types`,
    `nulls`, `domain` (unseen categories), `range`, `uniqueness`; excluded columns are only held to `uniqueness`.
    A champion written by another release (a model card of another format version) is not compared with: a warning
    names it and gate_model's `incompatible_champion` policy decides.
    Column checks: `identifiers` (unique integers in sequence, unique text) and `leakage` (a feature that alone
    predicts the target almost perfectly, or without which a too-good fit of the whole table collapses; on a
    sample of at most 2000 rows).

    Args:
        dataset: The ingested data.
        target: Name of the column to predict.
        schema: The inferred schema as JSON (per column: role - feature, target or excluded, with why -, type,
            kind, missing values, range or domain, uniqueness); it travels with the trained model, which uses the
            feature columns only, and becomes the reference when that model is champion.
        report: Markdown report: every check with its result, each failure and warning with counts and
            examples, the excluded columns and why, every feature's leakage scores, and the schema.
        metrics: Rows, columns, failures, warnings, excluded columns, suspected leakage and the fraction of
            missing values per column.
        task: `regression`, `classification` or `auto` (text, booleans and up to 20 integer labels are
            classification).
        model_name: Registered model whose champion's schema the data is compared with; empty skips the schema
            checks, as does a model without a champion (cold start). A name the registry cannot take stops the step
            (register_model would refuse it only after training).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        validation_policy: What each check does to the run, e.g. `{"domain": "fail", "leakage": "warn"}`. Schema
            checks take `fail`, `warn` or `ignore` (defaults: columns and types fail; nulls, domain, range and
            uniqueness warn); `identifiers` takes `exclude` (default: excluded from the features with a
            warning), `fail` or `keep`; `leakage` takes `fail` (default: the run stops, naming the columns and
            the `exclude_columns` to rerun with), `warn` or `ignore`. Each key is described in `ValidationPolicy`.
        cleaning_policy: prepare_data's cleaning policy, the same dict: with `coerce_mixed_types` true, a text
            column that is mostly numbers is a warning, and prepare_data sets its other values missing, instead
            of a failure. Its other keys are checked here and applied by prepare_data.
        exclude_columns: Columns that are no features (the model neither trains on them nor needs them in
            requests), e.g. `["customer_id", "refund_amount"]`; a name the data does not have, or the target,
            stops the run.
        sensitive_columns: Columns whose groups the model's fairness is measured across (evaluate_model,
            gate_model), e.g. `["sex", "age_band"]`; they may be excluded columns (a model is audited on attributes
            it does not use). Checked here so a typo stops the run before training: a name the data does not have,
            or the target, stops the run.
        schema_policy: Deprecated: use `validation_policy['columns']`, `['types']`, `['nulls']`, `['domain']`,
            `['range']` and `['uniqueness']`.
        column_policy: Deprecated: use `validation_policy['identifiers']` and `validation_policy['leakage']`.
        coerce_mixed_types: Deprecated: use `cleaning_policy['coerce_mixed_types']`.

    Returns:
        task: The resolved task, `regression` or `classification`.
    """
    import json

    from components._common.cleaning import read_cleaning_policy
    from components._common.memory import check_dataset_memory
    from components.validate_data.leakage import MEMORY_PER_COLUMN
    from components.validate_data.logic import validate_file
    from components.validate_data.policy import IGNORE, read_validation_policy
    from components.validate_data.reference import champion_reference
    from components.validate_data.report import render_report

    policy = read_validation_policy(validation_policy, schema_policy=schema_policy, column_policy=column_policy)
    cleaning = read_cleaning_policy(cleaning_policy, coerce_mixed_types=coerce_mixed_types)
    # A clear stop now rather than an OOM kill while reading; the leakage check's models grow with the columns.
    leakage_bytes = 0 if policy.leakage == IGNORE else MEMORY_PER_COLUMN
    check_dataset_memory("validate_data", dataset.path, column_bytes=leakage_bytes)
    reference = champion_reference(tracking_uri, model_name)
    # Read in record batches: memory bounded by the batch size, not the rows (see column_stats).
    validation = validate_file(
        dataset.path,
        target=target,
        task=task,
        reference=reference.schema,
        reference_name=reference.name,
        validation_policy=policy,
        coerce_mixed_types=cleaning.coerce_mixed_types,
        exclude_columns=exclude_columns,
        sensitive_columns=sensitive_columns,
    )
    with open(schema.path, "w") as stream:
        json.dump(validation.schema, stream, indent=2)
    with open(report.path, "w") as stream:
        stream.write(render_report(validation, target))
        if reference.not_compared:
            stream.write(f"\n## Champion not compared\n\n{reference.not_compared}\n")
    metrics.log_metric("rows", validation.schema["rows"])
    metrics.log_metric("columns", len(validation.schema["columns"]))
    metrics.log_metric("failures", len(validation.failures))
    metrics.log_metric("warnings", len(validation.warnings))
    metrics.log_metric("excluded_columns", len(validation.excluded))
    if validation.leakage is not None and not validation.leakage.not_run:
        metrics.log_metric("leakage_suspects", len(validation.leakage.suspects))
        metrics.log_metric(f"leakage_whole_{validation.leakage.metric}", round(validation.leakage.whole, 6))
    for column in validation.schema["columns"]:
        metrics.log_metric(f"null_fraction.{column['name']}", round(column["null_fraction"], 6))
    if reference.not_compared:
        print(f"warning [champion] {reference.not_compared}")
    for warning in validation.warnings:
        print(f"warning [{warning.check}] {warning.message}")
    for name, reason in validation.excluded.items():
        print(f"excluded column {name!r}: {reason}")
    validation.raise_for_failures()
    print(f"validation passed: task {validation.task}; {reference.name or 'no reference schema'}")
    return (validation.task,)
