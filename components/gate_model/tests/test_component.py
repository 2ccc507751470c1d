"""gate_model called as the pipeline calls it (``python_func``), on a trained model bundle and an empty registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kfp import dsl

from components._common.datasets import write_dataset
from components.gate_model.component import gate_model
from model_bundle import save


def test_gate_writes_its_reasons_and_metrics_and_returns_the_decision(mlflow_state, regression_bundle, artifact):
    bundle, test_frame = regression_bundle
    test = artifact(dsl.Dataset, "test")
    write_dataset(test_frame, test.path)
    reasons = artifact(dsl.Markdown, "reasons")
    metrics = artifact(dsl.Metrics, "metrics")

    approved = gate_model.python_func(
        model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
        test=test,
        model_name="houses",
        baseline_scores={"r2": -0.01, "rmse": 1e6, "mae": 1e6, "mape": 1.0},
        reasons=reasons,
        metrics=metrics,
        slice_column="neighbourhood",
        # KFP delivers dict numbers as floats
        gate_policy={"thresholds": {"r2": 0.5}, "cold_start": "reject", "min_test_rows": 50.0},
    )

    assert approved is False
    report = Path(reasons.path).read_text()
    assert report.startswith("# Challenger rejected\n")
    assert "- FAILED champion: none registered yet (cold start) and policy cold_start=reject" in report
    assert "## Challenger vs constant baseline" in report
    assert metrics.metadata["approved"] == 0
    assert metrics.metadata["challenger_r2"] > 0.5
    assert 0 < metrics.metadata["baseline_gain_ci_low"] <= metrics.metadata["baseline_gain"]
    assert "gain" not in metrics.metadata  # no champion to gain over


def test_gate_approves_a_cold_start_on_a_small_test_set_that_beats_the_training_mean(
    mlflow_state, regression_bundle, artifact
):
    bundle, test_frame = regression_bundle
    model = artifact(dsl.Model, "model")
    # As train_model writes it: the training target's mean is the constant baseline.
    save(model.path, bundle.model, dataclasses.replace(bundle.card, baseline_prediction=280_000.0), bundle.documents)
    test = artifact(dsl.Dataset, "test")
    write_dataset(test_frame.head(60), test.path)
    reasons = artifact(dsl.Markdown, "reasons")
    metrics = artifact(dsl.Metrics, "metrics")

    approved = gate_model.python_func(
        model=model,
        test=test,
        model_name="houses",
        baseline_scores={"r2": -0.01, "rmse": 1e6, "mae": 1e6},
        reasons=reasons,
        metrics=metrics,
    )

    assert approved is True
    report = Path(reasons.path).read_text()
    assert "**Decided by:** Cold start (no champion registered): approved because it beats the constant baseline" in (
        report
    )
    assert "predicting the training mean 280000 for every row" in report
    assert metrics.metadata["approved"] == 1
