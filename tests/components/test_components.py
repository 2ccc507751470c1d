"""The thin component functions, called directly (``python_func``) with local artifacts."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from kfp import dsl

from components._common.datasets import read_dataset, write_dataset
from components.detect_drift import detect_drift
from components.evaluate_model import evaluate_model
from components.gate_model import gate_model
from components.ingest_data import ingest_data
from components.prepare_data import prepare_data
from components.prepare_data.logic import prepare
from components.select_model import select_model
from components.train_model import train_model
from components.validate_data import validate_data
from components.validate_data.logic import DataValidationError
from model_bundle import PROFILE_FILE, load


def _artifact(kind, tmp_path, name):
    return kind(name=name, uri=str(tmp_path / name), metadata={})


@pytest.fixture
def ingested(tmp_path):
    dataset = _artifact(dsl.Dataset, tmp_path, "dataset")
    rows, content_sha256 = ingest_data.python_func(source_uri="sample://house-prices?rows=200&seed=5", dataset=dataset)
    return dataset, rows, content_sha256


def test_ingest_writes_parquet_with_lineage_metadata(ingested):
    dataset, rows, content_sha256 = ingested
    frame = read_dataset(dataset.path)
    assert rows == len(frame) == 200
    assert dataset.metadata["content_sha256"] == content_sha256
    assert dataset.metadata["source"] == "sample://house-prices?rows=200&seed=5"


def test_validate_writes_schema_report_and_metrics_then_resolves_the_task(ingested, tmp_path):
    dataset, _, _ = ingested
    schema = _artifact(dsl.Artifact, tmp_path, "schema")
    report = _artifact(dsl.Markdown, tmp_path, "report")
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")
    (task,) = validate_data.python_func(dataset=dataset, target="price", schema=schema, report=report, metrics=metrics)
    assert task == "regression"
    columns = {column["name"]: column for column in json.loads(Path(schema.path).read_text())["columns"]}
    assert columns["neighbourhood"]["type"] == "categorical"
    assert "# Data validation passed" in Path(report.path).read_text()
    assert metrics.metadata["rows"] == 200


def test_validate_writes_its_report_before_failing(ingested, tmp_path):
    dataset, _, _ = ingested
    report = _artifact(dsl.Markdown, tmp_path, "report")
    with pytest.raises(DataValidationError, match="target column 'nope' not found"):
        validate_data.python_func(
            dataset=dataset,
            target="nope",
            schema=_artifact(dsl.Artifact, tmp_path, "schema"),
            report=report,
            metrics=_artifact(dsl.Metrics, tmp_path, "metrics"),
        )
    assert "target column 'nope' not found" in Path(report.path).read_text()


def test_validate_prepare_then_train_produce_a_model_directory_with_its_contract(ingested, tmp_path):
    dataset, _, content_sha256 = ingested
    schema = _artifact(dsl.Artifact, tmp_path, "schema")
    validate_data.python_func(
        dataset=dataset,
        target="energy_label",
        schema=schema,
        report=_artifact(dsl.Markdown, tmp_path, "report"),
        metrics=_artifact(dsl.Metrics, tmp_path, "validate_metrics"),
    )
    train = _artifact(dsl.Dataset, tmp_path, "train")
    test = _artifact(dsl.Dataset, tmp_path, "test")
    profile = _artifact(dsl.Artifact, tmp_path, "profile")
    cleaning = _artifact(dsl.Markdown, tmp_path, "cleaning")
    prepare_metrics = _artifact(dsl.Metrics, tmp_path, "prepare_metrics")
    prepare_data.python_func(
        dataset=dataset,
        target="energy_label",
        task="classification",
        train=train,
        test=test,
        reference_profile=profile,
        cleaning_report=cleaning,
        metrics=prepare_metrics,
        outliers="clip",
    )
    assert "| duplicates | drop |" in Path(cleaning.path).read_text()
    assert prepare_metrics.metadata["missing_target.energy_label.rows"] == 0
    model = _artifact(dsl.Model, tmp_path, "model")
    metrics = _artifact(dsl.Metrics, tmp_path, "train_metrics")
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
    )
    bundle = load(model.path)
    assert bundle.card.data_content_sha256 == content_sha256
    assert bundle.card.hyperparameters == {"max_iter": 20.0}
    assert bundle.card.validation_rows > 0
    assert model.metadata["sha256"] == bundle.card.sha256
    assert "train_accuracy" in metrics.metadata
    assert metrics.metadata["validation_f1_macro"] == bundle.card.validation_scores["f1_macro"]
    assert bundle.schema == json.loads(Path(schema.path).read_text())
    assert bundle.documents[PROFILE_FILE]["rows"] == len(read_dataset(train.path))
    assert len(bundle.predict(read_dataset(test.path).drop(columns=["energy_label"]))) == len(read_dataset(test.path))


def _evaluate(bundle, houses, test_frame, tmp_path, **parameters):
    """evaluate_model on ``test_frame`` with the houses' training rows: its outputs, and its output artifacts."""
    train = _artifact(dsl.Dataset, tmp_path, "train")
    test = _artifact(dsl.Dataset, tmp_path, "test")
    write_dataset(prepare(houses, target=bundle.card.target, task=bundle.task, seed=1).train, train.path)
    write_dataset(test_frame, test.path)
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")
    classification_metrics = _artifact(dsl.ClassificationMetrics, tmp_path, "classification_metrics")
    report = _artifact(dsl.HTML, tmp_path, "report")
    returned = evaluate_model.python_func(
        model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
        train=train,
        test=test,
        metrics=metrics,
        classification_metrics=classification_metrics,
        report=report,
        **parameters,
    )
    return returned, (metrics, classification_metrics, report)


@pytest.mark.parametrize(
    ("fixture", "target", "task", "images"),
    [
        ("classification_bundle", "energy_label", "classification", 3),  # confusion matrix, ROC, calibration
        ("regression_bundle", "price", "regression", 2),  # predicted vs actual, residuals
    ],
)
def test_evaluate_writes_metrics_classification_metrics_and_html_report(
    request, houses, tmp_path, fixture, target, task, images
):
    bundle, test_frame = request.getfixturevalue(fixture)

    (scores, baseline_scores), (metrics, classification_metrics, report) = _evaluate(
        bundle, houses, test_frame, tmp_path, slice_column="renovated"
    )

    baseline = {f"baseline_{name}": value for name, value in baseline_scores.items()}
    assert metrics.metadata == {**scores, **baseline, "test_rows": len(test_frame)}
    page = Path(report.path).read_text()
    encoded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(encoded) == images
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in encoded)
    assert "Metrics per value of renovated" in page
    if task == "regression":
        assert classification_metrics.metadata == {}
        return
    assert {"roc_auc", "log_loss"} <= set(scores)
    matrix = classification_metrics.metadata["confusionMatrix"]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == bundle.card.classes
    assert sum(map(sum, (row["row"] for row in matrix["rows"]))) == len(test_frame)
    roc = classification_metrics.metadata["confidenceMetrics"]
    assert 2 <= len(roc) <= 200
    for point in roc:
        assert set(point) == {"confidenceThreshold", "recall", "falsePositiveRate"}
        assert all(math.isfinite(value) and 0 <= value <= 1 for value in point.values())


def test_evaluate_leaves_mape_out_of_metrics_and_report_when_the_test_target_has_zeros(
    regression_bundle, houses, tmp_path
):
    bundle, test_frame = regression_bundle
    test_frame = test_frame.copy()
    test_frame.loc[test_frame.index[:3], "price"] = 0.0

    (scores, baseline_scores), (metrics, _, report) = _evaluate(bundle, houses, test_frame, tmp_path)

    assert set(scores) == set(baseline_scores) == {"r2", "rmse", "mae"}
    assert not any("mape" in name for name in metrics.metadata)
    page = Path(report.path).read_text()
    assert page.count("MAPE") == 1
    assert f"MAPE omitted: the test target price has 3 of {len(test_frame)} values at or near zero" in page


def test_select_passes_on_a_copy_of_the_best_candidate_with_a_leaderboard(houses, tmp_path):
    from components.train_model.logic import train
    from model_bundle import read_card, save

    models = []
    for index, hyperparameters in enumerate(({"max_iter": 2, "max_depth": 1}, {"max_iter": 50})):
        pipeline, card = train(houses, "price", "regression", hyperparameters=hyperparameters, seed=1)
        candidate = _artifact(dsl.Model, tmp_path, f"candidate-{index}")
        save(candidate.path, pipeline, card)
        models.append(candidate)
    model = _artifact(dsl.Model, tmp_path, "model")
    leaderboard = _artifact(dsl.Markdown, tmp_path, "leaderboard")
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")

    select_model.python_func(models=models, model=model, leaderboard=leaderboard, metrics=metrics)

    assert read_card(model.path) == read_card(models[1].path)
    assert load(model.path).card.hyperparameters == {"max_iter": 50}
    assert Path(leaderboard.path).read_text().startswith("# Model selection: candidate 1 (hist_gradient_boosting) wins")
    assert metrics.metadata["winner_index"] == 1
    assert metrics.metadata["candidates"] == 2


def test_gate_writes_its_reasons_and_metrics_and_returns_the_decision(mlflow_state, regression_bundle, tmp_path):
    bundle, test_frame = regression_bundle
    test = _artifact(dsl.Dataset, tmp_path, "test")
    write_dataset(test_frame, test.path)
    reasons = _artifact(dsl.Markdown, tmp_path, "reasons")
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")

    approved = gate_model.python_func(
        model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
        test=test,
        model_name="houses",
        baseline_scores={"r2": -0.01, "rmse": 1e6, "mae": 1e6, "mape": 1.0},
        reasons=reasons,
        metrics=metrics,
        thresholds={"r2": 0.5},
        slice_column="neighbourhood",
        gate_policy={"cold_start": "reject", "min_test_rows": 50.0},  # KFP delivers dict numbers as floats
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
    mlflow_state, regression_bundle, tmp_path
):
    from model_bundle import save

    bundle, test_frame = regression_bundle
    model = _artifact(dsl.Model, tmp_path, "model")
    # As train_model writes it: the training target's mean is the constant baseline.
    save(model.path, bundle.model, dataclasses.replace(bundle.card, baseline_prediction=280_000.0), bundle.documents)
    test = _artifact(dsl.Dataset, tmp_path, "test")
    write_dataset(test_frame.head(60), test.path)
    reasons = _artifact(dsl.Markdown, tmp_path, "reasons")
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")

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


def test_detect_drift_compares_a_batch_with_the_champions_training_rows(mlflow_state, tmp_path):
    from components._common import registry
    from components.ingest_data.logic import house_prices
    from components.register_model.logic import register
    from components.train_model.logic import train
    from model_bundle import save
    from model_bundle.profile import build_profile

    training = house_prices(rows=1200, seed=2)
    pipeline, card = train(training, "price", "regression", model_type="linear")
    save(tmp_path / "champion", pipeline, card, {PROFILE_FILE: build_profile(training, "price")})
    version = register("", "houses", tmp_path / "champion", {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    shifted = house_prices(rows=400, seed=9)
    for column in ("size_sqm", "age_years", "distance_to_center_km", "rooms"):
        shifted[column] *= 1.6
    dataset = _artifact(dsl.Dataset, tmp_path, "batch")
    write_dataset(shifted, dataset.path)
    report = _artifact(dsl.HTML, tmp_path, "report")
    summary = _artifact(dsl.Markdown, tmp_path, "summary")
    metrics = _artifact(dsl.Metrics, tmp_path, "metrics")

    drifted = detect_drift.python_func(
        dataset=dataset, model_name="houses", report=report, summary=summary, metrics=metrics
    )

    assert drifted is True
    assert Path(summary.path).read_text().startswith("# Drift detected\n")
    assert "<html" in Path(report.path).read_text()[:2000].lower()
    assert metrics.metadata["dataset_drift"] == 1
    assert metrics.metadata["drifted_features"] >= 4
    assert set(metrics.metadata) >= {f"drift_score.{feature['name']}" for feature in card.features}
