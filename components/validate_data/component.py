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
) -> NamedTuple("Outputs", [("task", str)]):
    """Infers the data's schema and stops the run when a model cannot be trained on it.

    Fails, naming the column, on: no rows, a missing target column, a target without values or with a single
    value, a regression task on a text target, a column without values, a text column that mixes in numbers, an
    infinite number.

    Args:
        dataset: The ingested data.
        target: Name of the column to predict.
        schema: The inferred schema as JSON (per column: type, dtype, missing values, range or categories).
        report: Markdown report with the verdict, every problem and the schema.
        metrics: Rows, columns and the fraction of missing values per column.
        task: `regression`, `classification` or `auto` (text, booleans and up to 20 integer labels are
            classification).

    Returns:
        task: The resolved task, `regression` or `classification`.
    """
    import json

    from components._common.datasets import read_dataset
    from components.validate_data.logic import render_report, validate

    validation = validate(read_dataset(dataset.path), target=target, task=task)
    with open(schema.path, "w") as stream:
        json.dump(validation.schema, stream, indent=2)
    with open(report.path, "w") as stream:
        stream.write(render_report(validation, target))
    metrics.log_metric("rows", validation.schema["rows"])
    metrics.log_metric("columns", len(validation.schema["columns"]))
    for column in validation.schema["columns"]:
        metrics.log_metric(f"null_fraction.{column['name']}", round(column["null_fraction"], 6))
    validation.raise_for_problems()
    print(f"validation passed: task {validation.task}")
    return (validation.task,)
