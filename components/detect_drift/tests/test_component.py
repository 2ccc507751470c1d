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


def test_detect_drift_compares_a_batch_with_the_champions_training_rows(mlflow_state, artifact, tmp_path):
    training = house_prices(rows=1200, seed=2)
    pipeline, card = train(training, "price", "regression", model_type="linear")
    save(tmp_path / "champion", pipeline, card, {PROFILE_FILE: build_profile(training, "price")})
    version = register("", "houses", tmp_path / "champion", {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    shifted = house_prices(rows=400, seed=9)
    for column in ("size_sqm", "age_years", "distance_to_center_km", "rooms"):
        shifted[column] *= 1.6
    dataset = artifact(dsl.Dataset, "batch")
    write_dataset(shifted, dataset.path)
    report = artifact(dsl.HTML, "report")
    summary = artifact(dsl.Markdown, "summary")
    metrics = artifact(dsl.Metrics, "metrics")

    drifted = detect_drift.python_func(
        dataset=dataset, model_name="houses", report=report, summary=summary, metrics=metrics
    )

    assert drifted is True
    assert Path(summary.path).read_text().startswith("# Drift detected\n")
    assert "<html" in Path(report.path).read_text()[:2000].lower()
    assert metrics.metadata["dataset_drift"] == 1
    assert metrics.metadata["drifted_features"] >= 4
    assert set(metrics.metadata) >= {f"drift_score.{feature['name']}" for feature in card.features}
