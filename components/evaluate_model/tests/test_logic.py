"""evaluate_model: test-set scores next to the constant baseline, the classifier's confusion matrix and ROC curve,
per-slice scores, the fairness across groups (a model trained on labels made systematically worse for one group
shows the gap, in numbers equal to fairlearn's called directly; small groups are listed, not judged; a column the
model does not use is audited all the same), and the self-contained HTML report."""

from __future__ import annotations

import base64
import dataclasses
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from kfp import dsl
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

import model_bundle
from components._common.datasets import write_dataset
from components._common.fairness import MISSING_GROUP
from components._common.scoring import score, score_bundle
from components._common.slices import MAX_SLICES, MIN_SLICE_ROWS, Slice, slice_labels
from components.evaluate_model.component import evaluate_model
from components.evaluate_model.logic import (
    MAX_ROC_POINTS,
    Evaluation,
    baseline_scores,
    evaluate,
    summary_roc_curve,
)
from components.evaluate_model.report import render_report
from components.gate_model.champion import Champion
from components.gate_model.decision import decide
from components.gate_model.policy import GatePolicy
from components.ingest_data.samples import house_prices
from components.prepare_data.logic import prepare
from components.train_model.logic import train as train_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def regression_train(houses) -> pd.DataFrame:
    # The conftest bundles are trained on prepare(..., seed=1).train.
    return prepare(houses, target="price", task="regression", seed=1).train


@pytest.fixture(scope="module")
def classification_train(houses) -> pd.DataFrame:
    return prepare(houses, target="energy_label", task="classification", seed=1).train


@pytest.fixture(scope="module")
def binary(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame, pd.DataFrame]:
    """A yes/no classifier (is the energy label A, B or C?), its training rows and its test rows."""
    frame = houses.assign(efficient=np.where(houses["energy_label"].isin(["A", "B", "C"]), "yes", "no"))
    prepared = prepare(frame.drop(columns=["energy_label"]), target="efficient", task="classification", seed=1)
    pipeline, card = train_model(prepared.train, target="efficient", task="classification", seed=1)
    directory = tmp_path_factory.mktemp("binary") / "model"
    model_bundle.save(directory, pipeline, card)
    return model_bundle.load(directory), prepared.train, prepared.test


class Page(HTMLParser):
    """A parsed report: headings, table rows and images; fails on an element closed out of order."""

    VOID = frozenset({"meta", "img", "br", "hr"})

    def __init__(self, text: str):
        super().__init__()
        self.open: list[str] = []
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self.images: list[bytes] = []
        self._text: str | None = None
        self.feed(text)
        self.close()
        assert self.open == [], f"unclosed elements {self.open}"

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            source = dict(attrs)["src"]
            assert source.startswith("data:image/png;base64,")
            self.images.append(base64.b64decode(source.split(",", 1)[1], validate=True))
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("h1", "h2", "td", "th"):
            self._text = ""

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag in ("h1", "h2"):
            self.headings.append(self._text)
        if tag in ("td", "th"):
            self.rows[-1].append(self._text)

    def handle_data(self, data):
        if self._text is not None:
            self._text += data


def check_self_contained(text: str, images: int) -> Page:
    page = Page(text)
    assert len(page.images) == images
    assert all(image.startswith(PNG_SIGNATURE) for image in page.images)
    for forbidden in ("http://", "https://", "<script"):
        assert forbidden not in text.lower()
    return page


# --- scores and baseline -----------------------------------------------------------------------------------------


def test_regression_scores_and_baseline(regression_bundle, regression_train):
    bundle, test = regression_bundle

    evaluation = evaluate(bundle, regression_train, test)

    assert evaluation.test_rows == len(test)
    assert evaluation.scores == score_bundle(bundle, test).scores
    assert set(evaluation.baseline_scores) == {"r2", "rmse", "mae", "mape"}
    assert evaluation.baseline_scores["r2"] <= 0.05  # the training mean explains (almost) nothing
    assert evaluation.scores["r2"] > evaluation.baseline_scores["r2"]
    assert evaluation.scores["rmse"] < evaluation.baseline_scores["rmse"]
    assert evaluation.scores["mape"] < evaluation.baseline_scores["mape"]
    assert evaluation.classes is None
    assert evaluation.confusion_matrix is None
    assert evaluation.roc_curve is None
    assert evaluation.slices == []


def test_classifier_confusion_matrix(classification_bundle, classification_train):
    bundle, test = classification_bundle

    evaluation = evaluate(bundle, classification_train, test)

    classes = bundle.card.classes
    assert evaluation.classes == classes
    matrix = evaluation.confusion_matrix
    assert len(matrix) == len(classes)
    assert all(len(row) == len(classes) for row in matrix)
    assert sum(map(sum, matrix)) == len(test)
    # Rows are the true labels in card order.
    true_counts = test["energy_label"].astype(str).value_counts()
    assert [sum(row) for row in matrix] == [int(true_counts.get(label, 0)) for label in classes]
    correct = sum(matrix[i][i] for i in range(len(classes)))
    assert correct / len(test) == pytest.approx(evaluation.scores["accuracy"])
    assert evaluation.scores["accuracy"] > evaluation.baseline_scores["accuracy"]


def test_confusion_matrix_counts_test_rows_of_a_class_the_model_does_not_know(
    classification_bundle, classification_train
):
    # Scored on newer data where a label appeared that the model was never trained on: it is always wrong there,
    # and the matrix shows those rows (as accuracy counts them) rather than leaving them out.
    bundle, test = classification_bundle
    test = test.copy()
    test.loc[test.index[:7], "energy_label"] = "H"

    evaluation = evaluate(bundle, classification_train, test)

    matrix = evaluation.confusion_matrix
    assert sum(map(sum, matrix)) == len(test)
    classes = bundle.card.classes
    assert "H" not in classes
    assert evaluation.confusion_labels == [*classes, "H"]
    assert sum(matrix[-1]) == 7 and matrix[-1][-1] == 0
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    assert correct / len(test) == pytest.approx(evaluation.scores["accuracy"])
    assert "log_loss" not in evaluation.scores  # the model gives the new label no probability


def test_test_labels_none_of_which_the_model_knows_are_refused(classification_bundle, classification_train):
    # The labels retyped (the model's "A" is "a" here): every row would be scored as wrong, with nothing said.
    bundle, test = classification_bundle
    test = test.assign(energy_label=test["energy_label"].str.lower())

    with pytest.raises(
        ValueError, match=r"target column 'energy_label': none of the test labels .* renamed or retyped"
    ):
        evaluate(bundle, classification_train, test)


def test_classifier_probability_metrics_beat_the_baseline(classification_bundle, classification_train):
    bundle, test = classification_bundle

    evaluation = evaluate(bundle, classification_train, test)

    assert evaluation.scores == score_bundle(bundle, test).scores
    assert evaluation.baseline_scores["roc_auc"] == pytest.approx(0.5)  # constant probabilities rank nothing
    assert evaluation.scores["roc_auc"] > 0.7


def test_regression_baseline_predicts_the_training_mean():
    scores = baseline_scores("regression", pd.Series([1.0, 2.0, 3.0]), pd.Series([2.0, 4.0]))

    # Always 2.0: errors 0 and 2.
    assert scores["mae"] == pytest.approx(1.0)
    assert scores["rmse"] == pytest.approx(2**0.5)
    assert scores["mape"] == pytest.approx((0 / 2 + 2 / 4) / 2)


def test_classification_baseline_predicts_the_most_frequent_training_class():
    scores = baseline_scores("classification", pd.Series(["a", "a", "b"]), pd.Series(["a", "b", "b", "a"]))

    assert scores["accuracy"] == pytest.approx(0.5)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)
    # Probabilities are the training frequencies: 2/3 for a, 1/3 for b, on every row.
    assert scores["roc_auc"] == pytest.approx(0.5)
    assert scores["log_loss"] == pytest.approx(-(2 * math.log(2 / 3) + 2 * math.log(1 / 3)) / 4)


def test_empty_test_set_is_refused(regression_bundle, regression_train):
    bundle, test = regression_bundle

    with pytest.raises(ValueError, match=r"the test set has no rows"):
        evaluate(bundle, regression_train, test.iloc[0:0])


@pytest.mark.parametrize(
    ("bundle_fixture", "train_fixture"),
    [("regression_bundle", "regression_train"), ("classification_bundle", "classification_train")],
)
def test_test_rows_without_a_target_value_are_refused_naming_the_column(bundle_fixture, train_fixture, request):
    # A classifier would score the missing label as a class "nan" it always gets wrong; a regressor stopped with
    # scikit-learn's "Input contains NaN".
    bundle, test = request.getfixturevalue(bundle_fixture)
    test = test.copy()
    test.loc[test.index[[3, 8]], bundle.card.target] = None

    with pytest.raises(
        ValueError, match=r"target column '\w+' has 2 missing value\(s\) of \d+ rows, the first at row 3"
    ):
        evaluate(bundle, request.getfixturevalue(train_fixture), test)


class _Broken:
    """A trained model whose output at row 5 is replaced: how a regressor overflowing there looks to evaluate."""

    def __init__(self, model, method: str, value: float):
        self.model, self.method, self.value = model, method, value
        self.classes_ = getattr(model, "classes_", None)

    def predict(self, features):
        return self._broken(self.model.predict(features), "predict")

    def predict_proba(self, features):
        return self._broken(self.model.predict_proba(features), "predict_proba")

    def _broken(self, values, method):
        values = np.array(values, dtype="float64" if method == self.method else None)
        if method == self.method:
            values[5] = self.value
        return values


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_regressor_predicting_a_non_finite_value_is_named(regression_bundle, regression_train, value):
    bundle, test = regression_bundle
    broken = dataclasses.replace(bundle, model=_Broken(bundle.model, "predict", value))

    with pytest.raises(ValueError, match=r"model .* predicted values that are not finite numbers .* for 1 of .* row 5"):
        evaluate(broken, regression_train, test)


@pytest.mark.parametrize("value", [np.nan, 1.5, -0.1])
def test_a_classifier_giving_a_probability_outside_0_1_is_named(classification_bundle, classification_train, value):
    bundle, test = classification_bundle
    broken = dataclasses.replace(bundle, model=_Broken(bundle.model, "predict_proba", value))

    with pytest.raises(
        ValueError, match=r"model .* gave class probabilities that are not numbers within \[0, 1\] .* row 5"
    ):
        evaluate(broken, classification_train, test)


# --- ROC curve for the KFP UI ------------------------------------------------------------------------------------


def check_roc_points(curve) -> None:
    assert 2 <= len(curve.fpr) <= MAX_ROC_POINTS
    assert len(curve.fpr) == len(curve.tpr) == len(curve.thresholds)
    for values in (curve.fpr, curve.tpr, curve.thresholds):
        assert all(math.isfinite(value) and 0.0 <= value <= 1.0 for value in values)
    assert (curve.fpr[0], curve.tpr[0]) == (0.0, 0.0)
    assert (curve.fpr[-1], curve.tpr[-1]) == (1.0, 1.0)


def test_binary_roc_curve_is_the_positive_class_curve(binary):
    bundle, train, test = binary
    positive = test["efficient"] == "yes"
    probabilities = bundle.predict_proba(test.drop(columns=["efficient"]))

    evaluation = evaluate(bundle, train, test)

    assert bundle.card.classes == ["no", "yes"]
    assert evaluation.scores["roc_auc"] == pytest.approx(roc_auc_score(positive, probabilities[:, 1]))
    curve = evaluation.roc_curve
    assert curve.name == "positive class yes"
    check_roc_points(curve)
    fpr, tpr, thresholds = roc_curve(positive, probabilities[:, 1])
    assert len(fpr) <= MAX_ROC_POINTS  # so no point was thinned out
    assert curve.fpr == fpr.tolist()
    assert curve.tpr == tpr.tolist()
    assert curve.thresholds == [1.0, *thresholds[1:].tolist()]


def test_multiclass_roc_curve_is_the_micro_average(classification_bundle, classification_train):
    bundle, test = classification_bundle

    evaluation = evaluate(bundle, classification_train, test)

    assert evaluation.roc_curve.name == "micro-average one-vs-rest"
    check_roc_points(evaluation.roc_curve)


def test_long_roc_curve_is_thinned_to_points_of_the_full_curve():
    rng = np.random.default_rng(1)
    actual = rng.choice(["no", "yes"], size=5000)
    p_yes = np.clip((actual == "yes") * 0.3 + rng.random(5000) * 0.7, 0, 1)
    full = set(zip(*roc_curve(actual == "yes", p_yes)[:2], strict=True))
    assert len(full) > MAX_ROC_POINTS

    curve = summary_roc_curve(actual, np.column_stack([1 - p_yes, p_yes]), ["no", "yes"])

    check_roc_points(curve)
    assert set(zip(curve.fpr, curve.tpr, strict=True)) <= full


def test_single_class_test_set_has_no_roc_auc_and_no_roc_curve(binary):
    bundle, train, test = binary

    evaluation = evaluate(bundle, train, test[test["efficient"] == "yes"])

    assert "roc_auc" not in evaluation.scores
    assert "roc_auc" not in evaluation.baseline_scores
    assert evaluation.roc_curve is None
    page = check_self_contained(render_report(evaluation, bundle.card), images=2)  # no ROC plot
    assert ["ROC AUC", "↑ higher", "n/a", "n/a"] in page.rows


# --- slices ------------------------------------------------------------------------------------------------------


def test_slices_partition_the_test_rows_and_each_is_scored_on_its_rows(classification_bundle, classification_train):
    bundle, test = classification_bundle

    evaluation = evaluate(bundle, classification_train, test, slice_column="renovated")

    assert evaluation.slice_column == "renovated"
    assert {part.value for part in evaluation.slices} == {"True", "False"}
    assert sum(part.rows for part in evaluation.slices) == len(test)
    assert [part.rows for part in evaluation.slices] == sorted((part.rows for part in evaluation.slices), reverse=True)
    for part in evaluation.slices:
        rows = test[test["renovated"].astype(str) == part.value]
        assert part.rows == len(rows) >= MIN_SLICE_ROWS
        assert part.scores == pytest.approx(score_bundle(bundle, rows).scores)


def test_missing_values_form_their_own_slice_and_small_slices_are_not_scored(regression_bundle, regression_train):
    bundle, test = regression_bundle
    test = test.copy()
    test.iloc[:40, test.columns.get_loc("neighbourhood")] = np.nan
    missing = test[test["neighbourhood"].isna()]

    slices = {part.value: part for part in evaluate(bundle, regression_train, test, "neighbourhood").slices}

    assert slices["(missing)"].rows == len(missing) >= 40
    assert slices["(missing)"].scores == pytest.approx(score_bundle(bundle, missing).scores)
    counts = test["neighbourhood"].value_counts()
    small = [name for name, rows in counts.items() if rows < MIN_SLICE_ROWS]
    assert small  # the sample's test set has neighbourhoods of fewer rows
    for name in small:
        assert slices[name] == Slice(name, int(counts[name]), None)


def test_slices_beyond_the_maximum_are_summarised(regression_bundle, regression_train):
    bundle, test = regression_bundle
    test = test.copy()
    test["neighbourhood"] = ["big"] * 35 + [f"street {row:03d}" for row in range(len(test) - 35)]

    slices = evaluate(bundle, regression_train, test, "neighbourhood").slices

    assert len(slices) == MAX_SLICES + 1
    assert slices[0].value == "big"
    assert slices[0].scores is not None
    others = len(test) - 35 - (MAX_SLICES - 1)
    assert slices[-1].value == f"({others} other values)"
    assert slices[-1].rows == others
    assert slices[-1].scores == pytest.approx(score_bundle(bundle, test.iloc[35 + MAX_SLICES - 1 :]).scores)
    assert sum(part.rows for part in slices) == len(test)


@pytest.mark.parametrize("column", ["nope", "price"])
def test_slice_column_must_be_a_feature_of_the_test_set(regression_bundle, regression_train, column):
    bundle, test = regression_bundle

    with pytest.raises(
        ValueError, match=rf"slice_column: '{column}' is not a feature column of the test set; feature columns are "
    ) as raised:
        evaluate(bundle, regression_train, test, slice_column=column)
    assert "'neighbourhood'" in str(raised.value)


def test_a_custom_minimum_leaves_unscored_exactly_the_slices_the_gate_does_not_judge(
    regression_bundle, regression_train
):
    bundle, test = regression_bundle
    test = test.copy()
    test["neighbourhood"] = ["big"] * 60 + ["middle"] * 40 + ["small"] * (len(test) - 100)
    policy = GatePolicy.from_mapping({"min_slice_rows": 50.0, "min_test_rows": 1.0})

    evaluation = evaluate(bundle, regression_train, test, "neighbourhood", policy.slice_rule)
    decision = decide(
        "regression",
        test["price"],
        score_bundle(bundle, test),
        evaluation.baseline_scores,
        Champion(version="1", scored=score_bundle(bundle, test)),
        policy,
        slices=slice_labels(test, "price", "neighbourhood"),
    )

    shown = [(part.value, part.rows, part.scores is not None) for part in evaluation.slices]
    assert shown == [("big", 60, True), ("middle", 40, False), ("small", len(test) - 100, False)]
    assert [(result.value, result.rows, result.judged) for result in decision.slices] == shown
    page = check_self_contained(render_report(evaluation, bundle.card), images=2)
    assert next(row for row in page.rows if row[0] == "middle")[1:] == ["40", "too few rows to score"]
    assert "Slices of fewer than 50 rows (gate_policy['min_slice_rows']) are not scored, nor judged by the gate" in (
        render_report(evaluation, bundle.card)
    )


def test_the_component_reads_the_slice_minimum_from_gate_policy(tmp_path, regression_bundle, regression_train):
    bundle, test = regression_bundle
    test = test.copy()
    test["neighbourhood"] = ["big"] * 60 + ["middle"] * (len(test) - 60)
    artifacts = {name: tmp_path / name for name in ("train", "test", "metrics", "curves", "report")}
    write_dataset(regression_train, dsl.Dataset(name="train", uri=str(artifacts["train"]), metadata={}).path)
    write_dataset(test, dsl.Dataset(name="test", uri=str(artifacts["test"]), metadata={}).path)

    def run(**parameters) -> str:
        report = dsl.HTML(name="report", uri=str(artifacts["report"]), metadata={})
        evaluate_model.python_func(
            model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
            train=dsl.Dataset(name="train", uri=str(artifacts["train"]), metadata={}),
            test=dsl.Dataset(name="test", uri=str(artifacts["test"]), metadata={}),
            metrics=dsl.Metrics(name="metrics", uri=str(artifacts["metrics"]), metadata={}),
            classification_metrics=dsl.ClassificationMetrics(name="curves", uri=str(artifacts["curves"]), metadata={}),
            report=report,
            slice_column="neighbourhood",
            **parameters,
        )
        return Path(report.path).read_text(encoding="utf-8")

    middle = len(test) - 60
    assert middle >= MIN_SLICE_ROWS
    default, stricter = run(), run(gate_policy={"min_slice_rows": float(middle + 1), "ties": "promote_challenger"})
    assert next(row for row in Page(default).rows if row[0] == "middle")[2] != "too few rows to score"
    assert next(row for row in Page(stricter).rows if row[0] == "middle")[2] == "too few rows to score"
    with pytest.raises(ValueError, match=r"gate_policy\['min_slice_rows'\] must be at least 1"):
        run(gate_policy={"min_slice_rows": 0})


# --- HTML report -------------------------------------------------------------------------------------------------


def test_regression_report(regression_bundle, regression_train):
    bundle, test = regression_bundle
    evaluation = evaluate(bundle, regression_train, test, slice_column="renovated")

    page = check_self_contained(render_report(evaluation, bundle.card), images=2)

    assert page.headings == [
        "Evaluation of HistGradientBoostingRegressor predicting price (regression)",
        "Metrics",
        "Plots",
        "Metrics per value of renovated",
    ]
    r2 = f"{evaluation.scores['r2']:.4f}"
    assert ["R²", "↑ higher", r2, f"{evaluation.baseline_scores['r2']:.4f}"] in page.rows
    assert ["renovated", "rows", "R²", "RMSE", "MAE", "MAPE (fraction)"] in page.rows
    assert ["all test rows", f"{len(test)}", r2] == next(row for row in page.rows if row[0] == "all test rows")[:3]


def test_mape_is_omitted_with_its_reason_when_the_test_target_has_zeros(regression_bundle, regression_train):
    bundle, test = regression_bundle
    test = test.copy()
    test.loc[test.index[:4], "price"] = 0.0  # e.g. unsold houses recorded at price 0

    evaluation = evaluate(bundle, regression_train, test, slice_column="renovated")
    text = render_report(evaluation, bundle.card)

    assert set(evaluation.scores) == set(evaluation.baseline_scores) == {"r2", "rmse", "mae"}
    page = check_self_contained(text, images=2)
    assert [row[0] for row in page.rows[1:4]] == ["R²", "RMSE", "MAE"]
    assert ["renovated", "rows", "R²", "RMSE", "MAE"] in page.rows
    assert text.count("MAPE") == 1
    assert f"MAPE omitted: the test target price has 4 of {len(test)} values at or near zero (|value| &lt;= " in text
    assert "where a percentage error is undefined.</p>" in text


def test_slice_without_mape_shows_n_a_and_says_why():
    rng = np.random.default_rng(4)
    actual = rng.normal(100, 10, 80)
    predicted = actual + rng.normal(0, 5, 80)
    scores = score("regression", actual, predicted)
    without_mape = {name: value for name, value in scores.items() if name != "mape"}
    evaluation = Evaluation(
        "regression",
        "y",
        scores,
        scores,
        80,
        actual,
        predicted,
        slice_column="area",
        slices=[Slice("x", 80, without_mape)],
    )

    text = render_report(evaluation)

    page = check_self_contained(text, images=2)
    assert next(row for row in page.rows if row[0] == "x")[-1] == "n/a"
    assert "n/a: undefined on that slice's rows (MAPE: a true value at or near zero;" in text
    assert "MAPE omitted" not in text  # defined on the whole test set


def test_classification_report(binary):
    bundle, train, test = binary
    evaluation = evaluate(bundle, train, test)

    text = render_report(evaluation, bundle.card)

    page = check_self_contained(text, images=3)  # confusion matrix, ROC, calibration
    title = "Evaluation of HistGradientBoostingClassifier predicting efficient (classification)"
    assert page.headings == [title, "Metrics", "Plots"]
    assert "Positive class: yes" in text
    log_loss = [f"{evaluation.scores['log_loss']:.4f}", f"{evaluation.baseline_scores['log_loss']:.4f}"]
    assert ["log loss", "↓ lower", *log_loss] in page.rows


def test_report_escapes_labels_and_column_names():
    rng = np.random.default_rng(2)
    classes = ["<b>", "a & b", "$x$"]
    actual = rng.choice(classes, size=90)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=90)
    predicted = np.array(classes)[probabilities.argmax(axis=1)]
    scores = score("classification", actual, predicted, probabilities, classes)
    evaluation = Evaluation(
        task="classification",
        target="<target>",
        scores=scores,
        baseline_scores=scores,
        test_rows=90,
        actual=actual,
        predicted=predicted,
        probabilities=probabilities,
        classes=classes,
        confusion_labels=classes,
        confusion_matrix=confusion_matrix(actual, predicted, labels=classes).tolist(),
        slice_column='<i>"area"',
        slices=[Slice("<script>alert(1)</script>", 90, scores)],
    )

    text = render_report(
        evaluation,
        model_bundle.ModelCard(
            target="<target>", task="classification", features=[], classes=classes, estimator="<Model>"
        ),
    )

    page = check_self_contained(text, images=3)
    for raw in ("<b>", "<target>", "<i>", "<Model>", "a & b"):
        assert raw not in text
    assert page.headings[0] == "Evaluation of <Model> predicting <target> (classification)"
    assert page.headings[-1] == 'Metrics per value of <i>"area"'
    assert any(row[0] == "<script>alert(1)</script>" for row in page.rows)


def test_large_regression_report_plots_a_reproducible_sample():
    rng = np.random.default_rng(3)
    actual = rng.normal(100, 10, 6000)
    predicted = actual + rng.normal(0, 5, 6000)
    scores = score("regression", actual, predicted)
    evaluation = Evaluation("regression", "y", scores, scores, 6000, actual, predicted)

    text = render_report(evaluation)

    check_self_contained(text, images=2)
    assert "Shown: 5,000 of 6,000 rows, drawn at random." in text
    assert render_report(evaluation) == text


# --- fairness ------------------------------------------------------------------------------------------------------


def biased_frame(rows: int = 1600, seed: int = 11) -> pd.DataFrame:
    """Houses with a yes/no target (energy label A or B) and a `group` column: a and b alike, but half of group b's
    'yes' labels were recorded as 'no' (its labels made systematically worse); c is a small group, and a few
    rows have no group."""
    frame = house_prices(rows=rows, seed=seed)
    rng = np.random.default_rng([seed, 1])  # not the houses' own stream: the group is independent of them
    group = rng.choice(np.array(["a", "b", "c"], dtype=object), rows, p=[0.5, 0.47, 0.03])
    group[rng.random(rows) < 0.03] = None
    efficient = np.where(frame["energy_label"].isin(["A", "B"]), "yes", "no").astype(object)
    efficient[(group == "b") & (efficient == "yes") & (rng.random(rows) < 0.5)] = "no"
    return frame.drop(columns=["energy_label"]).assign(group=group, efficient=efficient)


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    """(model trained with `group` as a feature, model trained without it, training rows, test rows)."""
    prepared = prepare(biased_frame(), target="efficient", task="classification", seed=1)
    bundles = []
    for name, excluded in (("with_group", {}), ("without_group", {"group": "exclude_columns"})):
        pipeline, card = train_model(
            prepared.train, target="efficient", task="classification", seed=1, excluded_columns=excluded
        )
        directory = tmp_path_factory.mktemp(name) / "model"
        model_bundle.save(directory, pipeline, card)
        bundles.append(model_bundle.load(directory))
    return *bundles, prepared.train, prepared.test


def positives(labels) -> np.ndarray:
    return (np.asarray(labels) == "yes").astype(int)


def test_labels_worse_for_one_group_show_as_a_gap_equal_to_fairlearns(biased):
    bundle, _, train_rows, test = biased
    evaluation = evaluate(bundle, train_rows, test, sensitive_columns=["group"])

    (column,) = evaluation.fairness
    sizes = test["group"].fillna(MISSING_GROUP).value_counts()
    assert [(group.value, group.rows) for group in column.groups] == list(sizes.items())
    judged = {group.value: group.judged for group in column.groups}
    assert judged == {"a": True, "b": True, "c": False, MISSING_GROUP: False}
    assert all(group.metrics == {} for group in column.groups if not group.judged)

    groups = test["group"].fillna(MISSING_GROUP).rename("group")
    actual, predicted = positives(evaluation.actual), positives(evaluation.predicted)
    rates = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=actual,
        y_pred=predicted,
        sensitive_features=groups,
    )
    accuracy = MetricFrame(
        metrics=accuracy_score, y_true=evaluation.actual, y_pred=evaluation.predicted, sensitive_features=groups
    )
    for group in column.groups[:2]:
        expected = rates.by_group.loc[group.value].to_dict() | {"accuracy": accuracy.by_group[group.value]}
        assert group.metrics == pytest.approx(expected)
    kept = groups.isin(["a", "b"]).to_numpy()
    features = groups[kept]
    assert column.gaps == pytest.approx(
        {
            "demographic_parity_difference": demographic_parity_difference(
                actual[kept], predicted[kept], sensitive_features=features
            ),
            "demographic_parity_ratio": demographic_parity_ratio(
                actual[kept], predicted[kept], sensitive_features=features
            ),
            "equalized_odds_difference": equalized_odds_difference(
                actual[kept], predicted[kept], sensitive_features=features
            ),
        }
    )
    # The model learnt the bias: group b is selected far less often.
    by_group = {group.value: group.metrics for group in column.groups}
    assert by_group["a"]["selection_rate"] - by_group["b"]["selection_rate"] > 0.15
    assert column.gaps["demographic_parity_difference"] > 0.15
    assert column.worst_group["demographic_parity_difference"] == "b"

    page = check_self_contained(render_report(evaluation, bundle.card), images=4)  # 3 classifier plots + groups
    assert "Fairness across the groups of group" in page.headings
    gap = f"{column.gaps['demographic_parity_difference']:.4f}"
    assert next(row for row in page.rows if row[0] == "demographic parity difference")[:3] == [
        "demographic parity difference",
        gap,
        "b",
    ]
    assert next(row for row in page.rows if row[0] == "c")[2] == "too few rows to judge"
    assert next(row for row in page.rows if row[0] == "b")[1:3] == [
        f"{next(group.rows for group in column.groups if group.value == 'b'):,}",
        f"{by_group['b']['accuracy']:.4f}",
    ]


def test_a_column_the_model_does_not_use_is_audited(biased):
    with_group, without_group, train_rows, test = biased
    assert "group" not in {feature["name"] for feature in without_group.features}

    (column,) = evaluate(without_group, train_rows, test, sensitive_columns=["group"]).fairness
    (learnt,) = evaluate(with_group, train_rows, test, sensitive_columns=["group"]).fairness

    assert sorted(column.judged_groups) == ["a", "b"]
    # Not knowing the group, the model cannot select by it: a narrower gap than the model that learnt the bias.
    gap = "demographic_parity_difference"
    assert column.gaps[gap] < learnt.gaps[gap] / 2


def test_sensitive_column_must_be_in_the_test_rows_and_not_the_target(biased):
    bundle, _, train_rows, test = biased
    with pytest.raises(ValueError, match=r"sensitive_columns: unknown column\(s\) \['sex'\]"):
        evaluate(bundle, train_rows, test, sensitive_columns=["group", "sex"])
    with pytest.raises(ValueError, match=r"sensitive_columns: 'efficient' is the target"):
        evaluate(bundle, train_rows, test, sensitive_columns=["efficient"])


def test_regressor_errors_by_group_and_their_relative_gap(regression_bundle, regression_train):
    bundle, test = regression_bundle
    rng = np.random.default_rng(4)
    test = test.assign(region=np.where(np.arange(len(test)) % 2 == 0, "north", "south"))
    # The south's recorded prices are noisier: the model's error there is larger.
    south = (test["region"] == "south").to_numpy()
    test.loc[south, "price"] = test.loc[south, "price"] * rng.lognormal(0, 0.3, south.sum())

    evaluation = evaluate(bundle, regression_train, test, sensitive_columns=["region"])

    (column,) = evaluation.fairness
    errors = MetricFrame(
        metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error},
        y_true=evaluation.actual,
        y_pred=evaluation.predicted,
        sensitive_features=test["region"],
    )
    assert {group.value: group.metrics for group in column.groups} == {
        name: pytest.approx(values) for name, values in errors.by_group.to_dict("index").items()
    }
    assert column.gaps == pytest.approx(
        {
            "mae_relative_gap": errors.difference()["mae"] / errors.overall["mae"],
            "rmse_relative_gap": errors.difference()["rmse"] / errors.overall["rmse"],
        }
    )
    assert column.worst_group == {"mae_relative_gap": "south", "rmse_relative_gap": "south"}
    page = check_self_contained(render_report(evaluation, bundle.card), images=3)
    assert next(row for row in page.rows if row[0] == "MAE relative gap")[2] == "south"
    assert "Error per group of region" in render_report(evaluation, bundle.card)


def test_multiclass_rates_per_class_and_group(classification_bundle, classification_train):
    bundle, test = classification_bundle
    test = test.assign(half=np.where(np.arange(len(test)) < len(test) // 2, "first", "second"))

    evaluation = evaluate(bundle, classification_train, test, sensitive_columns=["half"])

    (column,) = evaluation.fairness
    assert {f"selection_rate[{label}]" for label in bundle.card.classes if label in evaluation.predicted} <= set(
        column.overall
    )
    text = render_report(evaluation, bundle.card)
    page = check_self_contained(text, images=4)  # confusion matrix, ROC, calibration, selection-rate heatmap
    header = next(row for row in page.rows if row[0] == "selection rate by class")
    assert header[1:] == [label for label in bundle.card.classes if f"selection_rate[{label}]" in column.overall]
    first = next(group for group in column.groups if group.value == "first")
    row = [row for row in page.rows if row[0] == "first"][-3]  # groups table, then one table per rate
    assert row[1:] == [f"{first.metrics[f'selection_rate[{label}]']:.4f}" for label in header[1:]]
    assert "each gap is that of the class where it is widest" in text


def test_the_component_logs_the_gaps_and_reads_the_group_minimum_from_gate_policy(tmp_path, biased):
    bundle, _, train_rows, test = biased
    paths = {name: tmp_path / name for name in ("train", "test", "metrics", "curves", "report")}
    write_dataset(train_rows, dsl.Dataset(name="train", uri=str(paths["train"]), metadata={}).path)
    write_dataset(test, dsl.Dataset(name="test", uri=str(paths["test"]), metadata={}).path)

    def run(**parameters):
        metrics = dsl.Metrics(name="metrics", uri=str(paths["metrics"]), metadata={})
        report = dsl.HTML(name="report", uri=str(paths["report"]), metadata={})
        evaluate_model.python_func(
            model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
            train=dsl.Dataset(name="train", uri=str(paths["train"]), metadata={}),
            test=dsl.Dataset(name="test", uri=str(paths["test"]), metadata={}),
            metrics=metrics,
            classification_metrics=dsl.ClassificationMetrics(name="curves", uri=str(paths["curves"]), metadata={}),
            report=report,
            **parameters,
        )
        return metrics.metadata, Page(Path(report.path).read_text(encoding="utf-8"))

    metrics, page = run(sensitive_columns=["group"])
    (column,) = evaluate(bundle, train_rows, test, sensitive_columns=["group"]).fairness
    assert {name: value for name, value in metrics.items() if name.startswith("fairness/")} == {
        f"fairness/group/{gap}": value for gap, value in column.gaps.items()
    }
    assert "Fairness across the groups of group" in page.headings

    smallest_judged = min(group.rows for group in column.groups if group.judged)
    metrics, page = run(sensitive_columns=["group"], gate_policy={"min_group_rows": float(smallest_judged + 1)})
    assert not any(name.startswith("fairness/") for name in metrics)  # one judged group: no gap
    assert sum(row[2:3] == ["too few rows to judge"] for row in page.rows) == 3

    metrics, _ = run()
    assert not any(name.startswith("fairness/") for name in metrics)
    with pytest.raises(ValueError, match=r"gate_policy\['min_group_rows'\] must be at least 1"):
        run(sensitive_columns=["group"], gate_policy={"min_group_rows": 0})
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['sex'\]"):
        run(sensitive_columns=["sex"])
