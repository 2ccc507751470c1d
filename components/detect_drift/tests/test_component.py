"""detect_drift called as the pipeline calls it (``python_func``), against a champion in a fresh registry."""

from __future__ import annotations

from pathlib import Path

from kfp import dsl

from components._common import registry
from components._common.datasets import write_dataset
from components.detect_drift.component import detect_drift
from components.ingest_data.samples import house_prices
from components.register_model.logic import register
from components.train_model.logic import train
from model_bundle import PROFILE_FILE, save
from model_bundle.profile import build_profile


def register_champion(tmp_path):
    training = house_prices(rows=1200, seed=2)
    pipeline, card = train(training, "price", "regression", model_type="linear")
    save(tmp_path / "champion", pipeline, card, {PROFILE_FILE: build_profile(training, "price")})
    version = register("", "houses", tmp_path / "champion", {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    return card


def run_step(artifact, frame, **parameters):
    dataset = artifact(dsl.Dataset, "batch")
    write_dataset(frame, dataset.path)
    summary = artifact(dsl.Markdown, "summary")
    metrics = artifact(dsl.Metrics, "metrics")
    report = artifact(dsl.HTML, "report")
    outputs = detect_drift.python_func(
        dataset=dataset, model_name="houses", report=report, summary=summary, metrics=metrics, **parameters
    )
    return outputs, Path(summary.path).read_text(), metrics.metadata, Path(report.path).read_text()


def test_detect_drift_compares_a_batch_with_the_champions_training_rows(mlflow_state, artifact, tmp_path):
    card = register_champion(tmp_path)
    shifted = house_prices(rows=400, seed=9)
    for column in ("size_sqm", "age_years", "distance_to_center_km", "rooms"):
        shifted[column] *= 1.6

    outputs, summary, metrics, report = run_step(artifact, shifted)

    assert outputs.Output is True and outputs.fairness_alert is False
    assert summary.startswith("# Drift detected\n") and "Fairness" not in summary
    assert "<html" in report[:2000].lower()
    assert metrics["dataset_drift"] == 1
    assert metrics["drifted_features"] >= 4
    assert set(metrics) >= {f"drift_score.{feature['name']}" for feature in card.features}
    assert "fairness_alert" not in metrics


def test_detect_drift_reports_the_champions_fairness_on_a_labelled_batch(mlflow_state, artifact, tmp_path):
    register_champion(tmp_path)
    batch = house_prices(rows=600, seed=9)

    outputs, summary, metrics, _ = run_step(artifact, batch, sensitive_columns=["neighbourhood"])
    unlabelled, unlabelled_summary, unlabelled_metrics, _ = run_step(
        artifact, batch.drop(columns=["price"]), sensitive_columns=["neighbourhood"]
    )

    assert "## Fairness of the champion on this batch" in summary and "600 labelled rows of 600" in summary
    assert metrics["labelled_rows"] == 600
    assert {"mae_relative_gap.neighbourhood", "rmse_relative_gap.neighbourhood"} <= set(metrics)
    assert outputs.fairness_alert is bool(metrics["fairness_alert"])
    assert "The batch has no `price` values: no labels: fairness not assessed." in unlabelled_summary
    assert unlabelled.fairness_alert is False and unlabelled_metrics["fairness_alert"] == 0
