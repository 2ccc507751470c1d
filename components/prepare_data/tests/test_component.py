"""prepare_data called as the pipeline calls it (``python_func``), on a dataset as ingest_data writes it."""

from __future__ import annotations

from pathlib import Path

from kfp import dsl

from components._common.datasets import read_dataset
from components.prepare_data.component import prepare_data


def test_prepare_writes_train_test_profile_cleaning_report_and_metrics(sample_dataset, artifact):
    dataset, _, _ = sample_dataset
    train, test = artifact(dsl.Dataset, "train"), artifact(dsl.Dataset, "test")
    cleaning = artifact(dsl.Markdown, "cleaning")
    metrics = artifact(dsl.Metrics, "metrics")

    prepare_data.python_func(
        dataset=dataset,
        target="energy_label",
        task="classification",
        train=train,
        test=test,
        reference_profile=artifact(dsl.Artifact, "profile"),
        cleaning_report=cleaning,
        metrics=metrics,
        cleaning_policy={"outliers": "clip"},
    )

    assert "| duplicates | drop |" in Path(cleaning.path).read_text()
    assert metrics.metadata["missing_target.energy_label.rows"] == 0
    assert len(read_dataset(train.path)) > len(read_dataset(test.path)) > 0
