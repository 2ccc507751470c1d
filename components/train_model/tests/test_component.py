"""train_model called as the pipeline calls it (``python_func``), on what validate_data and prepare_data write."""

from __future__ import annotations

import json
from pathlib import Path

from kfp import dsl

from components._common.datasets import read_dataset
from components.prepare_data.component import prepare_data
from components.train_model.component import train_model
from components.validate_data.component import validate_data
from model_bundle import PROFILE_FILE, load


def test_validate_prepare_then_train_produce_a_model_directory_with_its_contract(sample_dataset, artifact):
    dataset, _, content_sha256 = sample_dataset
    schema = artifact(dsl.Artifact, "schema")
    validate_data.python_func(
        dataset=dataset,
        target="energy_label",
        schema=schema,
        report=artifact(dsl.Markdown, "report"),
        metrics=artifact(dsl.Metrics, "validate_metrics"),
    )
    train, test = artifact(dsl.Dataset, "train"), artifact(dsl.Dataset, "test")
    profile = artifact(dsl.Artifact, "profile")
    prepare_data.python_func(
        dataset=dataset,
        target="energy_label",
        task="classification",
        train=train,
        test=test,
        reference_profile=profile,
        cleaning_report=artifact(dsl.Markdown, "cleaning"),
        metrics=artifact(dsl.Metrics, "prepare_metrics"),
        cleaning_policy={"outliers": "clip"},
    )
    model = artifact(dsl.Model, "model")
    metrics = artifact(dsl.Metrics, "train_metrics")

    train_model.python_func(
        train=train,
        schema=schema,
        reference_profile=profile,
        target="energy_label",
        task="classification",
        model=model,
        metrics=metrics,
        # KFP delivers dict numbers as floats
        candidate={"model_type": "hist_gradient_boosting", "hyperparameters": {"max_iter": 20.0}},
        data_content_sha256=content_sha256,
        sensitive_columns=["neighbourhood"],  # KFP delivers a list parameter as a list
    )

    bundle = load(model.path)
    assert bundle.card.data_content_sha256 == content_sha256
    assert set(bundle.card.sensitive_groups) == {"neighbourhood"}
    assert bundle.card.hyperparameters == {"max_iter": 20.0}
    assert bundle.card.validation_rows > 0
    assert model.metadata["sha256"] == bundle.card.sha256
    assert "train_accuracy" in metrics.metadata
    assert metrics.metadata["validation_f1_macro"] == bundle.card.validation_scores["f1_macro"]
    assert bundle.schema == json.loads(Path(schema.path).read_text())
    assert bundle.documents[PROFILE_FILE]["rows"] == len(read_dataset(train.path))
    assert len(bundle.predict(read_dataset(test.path).drop(columns=["energy_label"]))) == len(read_dataset(test.path))
