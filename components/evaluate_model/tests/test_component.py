"""evaluate_model called as the pipeline calls it (``python_func``), on trained model bundles and test rows."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import pytest
from kfp import dsl

from components._common.datasets import write_dataset
from components.evaluate_model.component import evaluate_model
from components.prepare_data.logic import prepare


@pytest.fixture
def evaluate(houses, artifact):
    """``evaluate(bundle, test_frame, **parameters)``: evaluate_model on ``test_frame`` with the houses' training
    rows; returns its outputs and its output artifacts (metrics, classification_metrics, report)."""

    def run(bundle, test_frame, **parameters):
        train, test = artifact(dsl.Dataset, "train"), artifact(dsl.Dataset, "test")
        write_dataset(prepare(houses, target=bundle.card.target, task=bundle.task, seed=1).train, train.path)
        write_dataset(test_frame, test.path)
        metrics = artifact(dsl.Metrics, "metrics")
        classification_metrics = artifact(dsl.ClassificationMetrics, "classification_metrics")
        report = artifact(dsl.HTML, "report")
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

    return run


@pytest.mark.parametrize(
    ("fixture", "target", "task", "images"),
    [
        ("classification_bundle", "energy_label", "classification", 3),  # confusion matrix, ROC, calibration
        ("regression_bundle", "price", "regression", 2),  # predicted vs actual, residuals
    ],
)
def test_evaluate_writes_metrics_classification_metrics_and_html_report(
    request, evaluate, fixture, target, task, images
):
    bundle, test_frame = request.getfixturevalue(fixture)

    (scores, baseline_scores), (metrics, classification_metrics, report) = evaluate(
        bundle, test_frame, slice_column="renovated"
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


def test_evaluate_leaves_mape_out_of_metrics_and_report_when_the_test_target_has_zeros(regression_bundle, evaluate):
    bundle, test_frame = regression_bundle
    test_frame = test_frame.copy()
    test_frame.loc[test_frame.index[:3], "price"] = 0.0

    (scores, baseline_scores), (metrics, _, report) = evaluate(bundle, test_frame)

    assert set(scores) == set(baseline_scores) == {"r2", "rmse", "mae"}
    assert not any("mape" in name for name in metrics.metadata)
    page = Path(report.path).read_text()
    assert page.count("MAPE") == 1
    assert f"MAPE omitted: the test target price has 3 of {len(test_frame)} values at or near zero" in page
