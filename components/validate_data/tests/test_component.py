"""validate_data called as the pipeline calls it (``python_func``), on a dataset as ingest_data writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp import dsl

from components.validate_data.component import validate_data
from components.validate_data.logic import DataValidationError


def test_validate_writes_schema_report_and_metrics_then_resolves_the_task(sample_dataset, artifact):
    dataset, _, _ = sample_dataset
    schema = artifact(dsl.Artifact, "schema")
    report = artifact(dsl.Markdown, "report")
    metrics = artifact(dsl.Metrics, "metrics")

    (task,) = validate_data.python_func(dataset=dataset, target="price", schema=schema, report=report, metrics=metrics)

    assert task == "regression"
    columns = {column["name"]: column for column in json.loads(Path(schema.path).read_text())["columns"]}
    assert columns["neighbourhood"]["type"] == "categorical"
    assert "# Data validation passed" in Path(report.path).read_text()
    assert metrics.metadata["rows"] == 200


def test_validate_writes_its_report_before_failing(sample_dataset, artifact):
    dataset, _, _ = sample_dataset
    report = artifact(dsl.Markdown, "report")

    with pytest.raises(DataValidationError, match="target column 'nope' not found"):
        validate_data.python_func(
            dataset=dataset,
            target="nope",
            schema=artifact(dsl.Artifact, "schema"),
            report=report,
            metrics=artifact(dsl.Metrics, "metrics"),
        )

    assert "target column 'nope' not found" in Path(report.path).read_text()


@pytest.mark.parametrize(
    ("model_name", "problem"),
    [("team/houses", "is no registered model name: .*cannot contain '/'"), ("h" * 300, "at most 255 bytes")],
)
def test_a_model_name_the_registry_cannot_take_stops_the_run_here_not_at_registration(
    mlflow_state, sample_dataset, artifact, model_name, problem
):
    # The second step of a training run: register_model would refuse the name only after training and the gate.
    dataset, _, _ = sample_dataset

    with pytest.raises(ValueError, match=rf"^parameter model_name '{model_name[:40]}'.*{problem}"):
        validate_data.python_func(
            dataset=dataset,
            target="price",
            model_name=model_name,
            schema=artifact(dsl.Artifact, "schema"),
            report=artifact(dsl.Markdown, "report"),
            metrics=artifact(dsl.Metrics, "metrics"),
        )
