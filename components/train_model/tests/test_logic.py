"""train_model: fitting both tasks, the model card, hyperparameter checking and repair, and the model directory."""

from __future__ import annotations

import json
import math
import pickle
import threading
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor, _forest
from sklearn.linear_model import Ridge

import model_bundle
from components._common.datasets import write_dataset
from components.train_model.candidate import parse_candidate, restore_integers
from components.train_model.logic import TrainingError, card_metrics, train, train_model_directory
from model_bundle.profile import build_profile

EXPECTED_FEATURES = [
    {"name": "size_sqm", "type": "numeric"},
    {"name": "rooms", "type": "numeric"},
    {"name": "age_years", "type": "numeric"},
    {"name": "renovated", "type": "categorical"},
    {"name": "distance_to_center_km", "type": "numeric"},
    {"name": "neighbourhood", "type": "categorical"},
]


@pytest.fixture(scope="module")
def small(houses) -> pd.DataFrame:
    return houses.head(150).reset_index(drop=True)


def test_regression_card_describes_the_model(regression_bundle):
    bundle, test = regression_bundle
    card = bundle.card

    assert card.target == "price"
    assert card.task == "regression"
    assert card.features == [*EXPECTED_FEATURES, {"name": "energy_label", "type": "categorical"}]
    assert card.classes is None
    assert card.model_type == "hist_gradient_boosting"
    assert card.estimator == "HistGradientBoostingRegressor"
    assert card.seed == 1
    assert card.training_rows > 0
    assert set(card.training_scores) == {"r2", "rmse", "mae", "mape"}
    assert card.training_scores["r2"] > 0.5
    assert set(card.validation_scores) == {"r2", "rmse", "mae", "mape"}
    assert card.validation_rows == math.ceil(card.training_rows * 0.2)
    predictions = bundle.predict(test.drop(columns=["price"]))
    assert predictions.dtype.kind == "f"
    assert len(predictions) == len(test)


def test_classification_card_lists_the_classes(classification_bundle):
    bundle, test = classification_bundle
    card = bundle.card

    assert card.task == "classification"
    assert card.estimator == "HistGradientBoostingClassifier"
    assert card.classes == sorted(test["energy_label"].astype(str).unique().tolist())
    assert card.features == [*EXPECTED_FEATURES, {"name": "price", "type": "numeric"}]
    assert set(card.training_scores) == {"accuracy", "balanced_accuracy", "f1_macro"}
    predictions = bundle.predict(test.drop(columns=["energy_label"]))
    assert set(predictions) <= set(card.classes)


def test_regression_card_holds_the_target_deciles_for_the_prediction_distribution(regression_bundle, houses):
    bundle, _ = regression_bundle
    edges = bundle.card.prediction_buckets

    assert len(edges) == 9
    assert edges == sorted(edges)
    # The middle edge is the training target's median, within the spread of the sample.
    assert houses["price"].quantile(0.3) < edges[4] < houses["price"].quantile(0.7)


def test_classification_card_has_no_value_buckets(classification_bundle):
    bundle, _ = classification_bundle

    assert bundle.card.prediction_buckets is None


def test_input_example_is_a_json_safe_training_row_without_the_target():
    frame = pd.DataFrame(
        {
            "size": [np.nan, 80.0, 95.0, 120.0] * 5,
            "area": ["north", None, "south", "north"] * 5,
            "renovated": [True, False, True, False] * 5,
            "price": [100.0, 200.0, 300.0, 400.0] * 5,
        }
    )

    _, card = train(frame, target="price", task="regression", model_type="linear")

    assert card.input_example == {"size": None, "area": "north", "renovated": True}
    json.dumps(card.to_json())  # the whole card must be writable as JSON


def test_classification_labels_become_strings(small):
    frame = small.assign(expensive=(small["price"] > small["price"].median()).astype(int))

    pipeline, card = train(frame.drop(columns=["price"]), target="expensive", task="classification", seed=0)

    assert card.classes == ["0", "1"]
    assert pipeline.classes_.tolist() == ["0", "1"]


@pytest.mark.parametrize(
    ("model_type", "task", "estimator"),
    [
        ("random_forest", "regression", "RandomForestRegressor"),
        ("random_forest", "classification", "RandomForestClassifier"),
        ("linear", "regression", "Ridge"),
        ("linear", "classification", "LogisticRegression"),
    ],
)
def test_every_model_type_trains(small, model_type, task, estimator):
    target = "price" if task == "regression" else "energy_label"
    hyperparameters = {"n_estimators": 10} if model_type == "random_forest" else {}

    pipeline, card = train(small, target=target, task=task, model_type=model_type, hyperparameters=hyperparameters)

    assert card.model_type == model_type
    assert card.estimator == estimator
    assert type(pipeline.named_steps["estimator"]).__name__ == estimator
    assert card.hyperparameters == hyperparameters
    # Fitted, and better than predicting a constant on the rows it saw.
    assert card.training_scores["r2" if task == "regression" else "balanced_accuracy"] > (
        0 if task == "regression" else 1 / small[target].nunique()
    )


def test_training_is_deterministic_for_a_seed(small):
    features = small.drop(columns=["price"])
    first, _ = train(small, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 5})
    second, _ = train(small, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 5})

    np.testing.assert_array_equal(first.predict(features), second.predict(features))


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_forest_fitted_on_two_cores_is_the_one_fitted_on_one_and_serves_in_one_thread(small, monkeypatch, task):
    target = "price" if task == "regression" else "energy_label"
    build_tree = _forest._parallel_build_trees
    fitted, builders = {}, {}
    for cores in (1, 2):
        monkeypatch.setattr(joblib, "cpu_count", lambda cores=cores: cores)
        builders[cores] = set()

        def spied(*args, builders=builders[cores], **kwargs):
            builders.add(threading.get_ident())
            time.sleep(0.02)  # long enough that the pool's other thread takes the next tree
            return build_tree(*args, **kwargs)

        monkeypatch.setattr(_forest, "_parallel_build_trees", spied)
        model, card = train(small, target, task, model_type="random_forest", hyperparameters={"n_estimators": 6})
        fitted[cores] = (pickle.dumps(model), card.training_scores, card.validation_scores)

    assert len(builders[1]) == 1 and len(builders[2]) > 1  # each fit's pool: a thread per core
    assert fitted[2] == fitted[1]  # the same trees, byte for byte, and the same scores
    assert model.named_steps["estimator"].n_jobs is None  # a served request is not spread over threads


def test_seed_becomes_random_state_unless_given(small):
    seeded, _ = train(
        small, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 3}, seed=5
    )
    explicit, _ = train(
        small,
        "price",
        "regression",
        model_type="random_forest",
        hyperparameters={"n_estimators": 3, "random_state": 8},
        seed=5,
    )

    assert seeded.named_steps["estimator"].random_state == 5
    assert explicit.named_steps["estimator"].random_state == 8


def test_rows_without_target_are_not_trained_on(small):
    frame = small.copy()
    frame.loc[:9, "price"] = np.nan

    _, card = train(frame, "price", "regression", model_type="linear")

    assert card.training_rows == len(small) - 10


def test_unknown_model_type_is_named(small):
    with pytest.raises(TrainingError, match=r"parameter model_type must be one of .*'linear'.*got 'xgboost'"):
        train(small, "price", "regression", model_type="xgboost")


def test_unknown_hyperparameter_is_named(small):
    with pytest.raises(
        TrainingError,
        match=r"unknown hyperparameter\(s\) \['max_dept'\] for HistGradientBoostingRegressor; valid: .*'max_depth'",
    ):
        train(small, "price", "regression", hyperparameters={"max_dept": 3})


def test_invalid_hyperparameter_value_is_reported(small):
    with pytest.raises(TrainingError, match=r"invalid hyperparameters for HistGradientBoostingRegressor: .*max_iter"):
        train(small, "price", "regression", hyperparameters={"max_iter": -1})


@pytest.mark.parametrize(
    ("model_type", "task", "target", "hyperparameters", "estimator", "refusal"),
    [
        ("linear", "regression", "price", {"solver": "lbfgs"}, "Ridge", "'lbfgs' solver can be used only when"),
        (
            "random_forest",
            "regression",
            "price",
            {"bootstrap": False, "max_samples": 0.5},
            "RandomForestRegressor",
            "`max_sample` cannot be set if `bootstrap=False`",
        ),
        (
            "linear",
            "classification",
            "energy_label",
            {"penalty": "elasticnet"},
            "LogisticRegression",
            "got elasticnet penalty",
        ),
    ],
)
@pytest.mark.parametrize("validation_fraction", [0.2, 0.0])
def test_hyperparameters_scikit_learn_refuses_only_when_fitting_are_named_with_the_candidate(
    small, model_type, task, target, hyperparameters, estimator, refusal, validation_fraction
):
    # Each value passes the estimator's own checks; scikit-learn refuses the combination in fit.
    with pytest.raises(TrainingError) as refused:
        train(small, target, task, model_type, hyperparameters, validation_fraction=validation_fraction)

    message = str(refused.value)
    assert message.startswith(
        f"candidate {model_type} with hyperparameters {hyperparameters} failed to fit ({estimator}); scikit-learn: "
    )
    assert message.endswith("(if it names a hyperparameter, change it in candidates)")
    assert refusal in message


def test_an_error_that_is_no_refusal_of_the_candidate_is_not_wrapped(small, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Ridge, "fit", out_of_memory)
    with pytest.raises(MemoryError):
        train(small, "price", "regression", "linear", validation_fraction=0)


def test_missing_target_is_named(small):
    with pytest.raises(TrainingError, match=r"target column 'cost' not found"):
        train(small, "cost", "regression")


def test_target_without_values_is_named():
    frame = pd.DataFrame({"x": [1.0, 2.0], "price": [np.nan, np.nan]})
    with pytest.raises(TrainingError, match=r"no rows with a value in target column 'price'"):
        train(frame, "price", "regression")


def test_target_alone_has_no_features():
    with pytest.raises(TrainingError, match=r"no feature columns besides target 'price'"):
        train(pd.DataFrame({"price": [1.0, 2.0, 3.0]}), "price", "regression")


def test_whole_floats_from_kfp_train_as_integers(small):
    # KFP delivers every number of a dict parameter as a float.
    pipeline, card = train(small, "price", "regression", hyperparameters={"max_iter": 20.0, "max_depth": 3.0})

    estimator = pipeline.named_steps["estimator"]
    assert estimator.max_iter == 20
    assert isinstance(estimator.max_iter, int)
    assert isinstance(estimator.max_depth, int)
    # Recorded as fitted: the card's values rebuild the estimator (random_state=7.0 would not).
    assert card.hyperparameters == {"max_iter": 20, "max_depth": 3}
    assert all(type(value) is int for value in card.hyperparameters.values())


@pytest.mark.parametrize(
    ("estimator_class", "given", "expected"),
    [
        pytest.param(RandomForestRegressor, {"min_samples_leaf": 2.0}, {"min_samples_leaf": 2}, id="leaf-2"),
        pytest.param(RandomForestRegressor, {"max_features": 1.0}, {"max_features": 1.0}, id="max_features-fraction"),
        pytest.param(RandomForestRegressor, {"max_features": 3.0}, {"max_features": 3}, id="max_features-count"),
        pytest.param(RandomForestRegressor, {"n_estimators": 10.0}, {"n_estimators": 10}, id="n_estimators"),
        pytest.param(RandomForestRegressor, {"min_samples_split": 1.0}, {"min_samples_split": 1.0}, id="split-1.0"),
        pytest.param(RandomForestRegressor, {"min_samples_leaf": 0.5}, {"min_samples_leaf": 0.5}, id="not-whole"),
        pytest.param(RandomForestClassifier, {"max_depth": 4.0}, {"max_depth": 4}, id="max_depth"),
        pytest.param(HistGradientBoostingRegressor, {"learning_rate": 1.0}, {"learning_rate": 1.0}, id="real-only"),
        pytest.param(HistGradientBoostingRegressor, {"max_leaf_nodes": 31.0}, {"max_leaf_nodes": 31}, id="leaves"),
        pytest.param(Ridge, {"alpha": 2.0}, {"alpha": 2.0}, id="ridge-alpha"),
        pytest.param(Ridge, {"max_iter": 100}, {"max_iter": 100}, id="already-int"),
        pytest.param(Ridge, {"solver": "auto"}, {"solver": "auto"}, id="string"),
        # Named and type constraints: a seed, a verbosity level, a number of jobs (n_jobs: Integral or None).
        pytest.param(RandomForestClassifier, {"random_state": 7.0}, {"random_state": 7}, id="random_state"),
        pytest.param(HistGradientBoostingRegressor, {"verbose": 1.0}, {"verbose": 1}, id="verbose"),
        pytest.param(RandomForestRegressor, {"n_jobs": 2.0}, {"n_jobs": 2}, id="n_jobs"),
    ],
)
def test_restore_integers(estimator_class, given, expected):
    restored = restore_integers(estimator_class, given)

    assert restored == expected
    for name, value in expected.items():
        assert type(restored[name]) is type(value), name


def test_restore_integers_does_not_change_its_argument():
    given = {"min_samples_leaf": 2.0}

    restore_integers(RandomForestRegressor, given)

    assert given == {"min_samples_leaf": 2.0}
    assert isinstance(given["min_samples_leaf"], float)


# --- candidates and validation -----------------------------------------------------------------------------------


def test_validation_scores_come_from_rows_the_scored_copy_never_saw(small):
    _, card = train(small, "price", "regression", model_type="random_forest", hyperparameters={"n_estimators": 20})

    # A forest nearly memorises its own rows: scores on seen rows are far better than on held-out ones.
    assert card.validation_scores["r2"] < card.training_scores["r2"] - 0.05
    assert card.validation_rows == math.ceil(len(small) * 0.2)
    assert card.training_rows == len(small)  # the returned model is refitted on every row


def test_validation_is_reproducible_and_can_be_skipped(small):
    _, first = train(small, "price", "regression", model_type="linear", seed=3)
    _, second = train(small, "price", "regression", model_type="linear", seed=3)
    _, skipped = train(small, "price", "regression", model_type="linear", validation_fraction=0.0)

    assert first.validation_scores == second.validation_scores
    assert (skipped.validation_scores, skipped.validation_rows) == (None, 0)


def test_classification_validation_is_stratified(small):
    _, card = train(small, "energy_label", "classification", model_type="linear", validation_fraction=0.3)

    assert set(card.validation_scores) == {"accuracy", "balanced_accuracy", "f1_macro"}


@pytest.mark.parametrize("seed", range(12))
def test_a_class_of_one_training_row_is_fitted_on_never_held_out(small, seed):
    # prepare_data keeps a class of two rows on both sides: one row in training. Held out for validation (about one
    # seed in five), it left a fit on one class, which LogisticRegression refuses.
    rare = small.assign(label=np.where(small.index == 7, "fraud", "ok"))

    _, card = train(rare, "label", "classification", model_type="linear", seed=seed, validation_fraction=0.2)

    assert card.classes == ["fraud", "ok"]
    assert card.validation_rows == 30


@pytest.mark.parametrize("fraction", [1.0, -0.1])
def test_validation_fraction_out_of_range_is_named(small, fraction):
    with pytest.raises(TrainingError, match=r"parameter validation_fraction must be in \[0, 1\)"):
        train(small, "price", "regression", validation_fraction=fraction)


def test_too_few_rows_to_hold_out_are_named(small):
    with pytest.raises(TrainingError, match=r"2 training rows are too few to hold out validation_fraction=0.5"):
        train(small.head(2), "price", "regression", model_type="linear", validation_fraction=0.5)


def test_candidate_configuration_is_parsed():
    given = {"model_type": "random_forest", "hyperparameters": {"n_estimators": 5}}

    model_type, hyperparameters = parse_candidate(given)

    assert (model_type, hyperparameters) == ("random_forest", {"n_estimators": 5})
    hyperparameters["max_depth"] = 2  # the parsed copy is the caller's own: the configuration is left as it was
    assert given["hyperparameters"] == {"n_estimators": 5}
    # Both keys are optional, and an empty value means the default.
    assert parse_candidate({}) == ("hist_gradient_boosting", {})
    assert parse_candidate({"model_type": "", "hyperparameters": None}) == ("hist_gradient_boosting", {})


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ({"model": "linear"}, r"unknown key\(s\) \['model'\]; known: \['model_type', 'hyperparameters'\]"),
        ({"hyperparameters": [1]}, r"hyperparameters must be an object, got \[1\]"),
        ("linear", r"a candidate must be an object with keys"),
    ],
)
def test_bad_candidate_is_named(candidate, message):
    with pytest.raises(TrainingError, match=message):
        parse_candidate(candidate)


# --- column roles and the card's baseline ------------------------------------------------------------------------


def test_excluded_columns_are_not_features_and_the_card_says_why(small):
    frame = small.assign(listing_id=range(len(small)))
    excluded = {"listing_id": "identifier: unique integers in sequence", "rooms": "exclude_columns"}

    model, card = train(frame, "price", "regression", validation_fraction=0, excluded_columns=excluded)

    assert [f["name"] for f in card.features] == [name for name in small.columns if name not in ("price", "rooms")]
    assert card.excluded_columns == excluded
    assert "listing_id" not in card.input_example
    # The model ignores them when a caller sends whole rows, whatever their values.
    scrambled = frame.assign(listing_id=-1, rooms=999)
    np.testing.assert_array_equal(model.predict(frame), model.predict(scrambled))


def test_an_excluded_column_that_does_not_exist_is_named(small):
    with pytest.raises(TrainingError, match=r"excluded column\(s\) \['row_id'\] not found"):
        train(small, "price", "regression", excluded_columns={"row_id": "exclude_columns"})


# --- sensitive columns: the groups the model server counts predictions for ---------------------------------------


def test_the_card_lists_each_sensitive_columns_most_frequent_groups_most_frequent_first(houses):
    frame = houses.copy()
    unlabelled = frame.index[:50]
    frame.loc[unlabelled, "price"] = np.nan  # rows without a target are not trained on, nor counted

    _, card = train(
        frame, "price", "regression", validation_fraction=0, sensitive_columns=["neighbourhood", "age_years"]
    )

    trained = frame.drop(index=unlabelled)
    assert list(card.sensitive_groups) == ["neighbourhood", "age_years"]
    # Missing values are no group: the server counts them as (missing).
    assert card.sensitive_groups["neighbourhood"] == trained["neighbourhood"].value_counts().index.tolist()
    # Whole numbers are named as integers (Parquet keeps 12.0, a JSON client may send 12); 10 groups at most, ties
    # in name order.
    ages = trained["age_years"].value_counts()
    assert trained["age_years"].dtype == "float64" and len(ages) > 10
    listed = card.sensitive_groups["age_years"]
    assert len(listed) == 10 and all(name.isdigit() for name in listed)
    counts = [ages[float(name)] for name in listed]
    assert counts == sorted(ages, reverse=True)[:10]
    assert listed == sorted(listed, key=lambda name: (-ages[float(name)], name))


def test_an_excluded_column_can_be_sensitive_and_is_still_no_feature(small):
    excluded = {"neighbourhood": "exclude_columns"}

    model, card = train(
        small,
        "price",
        "regression",
        validation_fraction=0,
        excluded_columns=excluded,
        sensitive_columns=["neighbourhood"],
    )

    assert "neighbourhood" not in [feature["name"] for feature in card.features]
    assert set(card.sensitive_groups["neighbourhood"]) == set(small["neighbourhood"].dropna())
    np.testing.assert_array_equal(model.predict(small), model.predict(small.assign(neighbourhood="Docklands")))


def test_without_sensitive_columns_the_card_lists_no_groups(small):
    _, card = train(small, "price", "regression", validation_fraction=0)

    assert card.sensitive_groups == {}


@pytest.mark.parametrize(
    ("sensitive_columns", "message"),
    [
        (["neighbourhood", "owner_sex"], r"sensitive_columns: unknown column\(s\) \['owner_sex'\]"),
        (["price"], r"sensitive_columns: 'price' is the target"),
        ("neighbourhood", r"sensitive_columns must be a list of column names, got 'neighbourhood'"),
    ],
)
def test_bad_sensitive_columns_are_named(small, sensitive_columns, message):
    with pytest.raises(TrainingError, match=message):
        train(small, "price", "regression", validation_fraction=0, sensitive_columns=sensitive_columns)


def test_card_records_the_constant_baseline_evaluation_uses(small):
    _, regression = train(small, "price", "regression", validation_fraction=0)
    assert regression.baseline_prediction == pytest.approx(small["price"].mean())

    labels = pd.Series(["b", "a", "b", "a", "c"] * 30, name="label")
    _, classification = train(small.assign(label=labels), "label", "classification", validation_fraction=0)
    # "a" and "b" are equally frequent: the first in sorted order, as DummyClassifier(strategy="prior") predicts.
    assert classification.baseline_prediction == "a"


def test_the_model_types_raw_columns_itself(small):
    """Numbers as text and booleans as Python objects (a JSON decoder's output) predict as the typed frame does."""
    model, _ = train(small, "price", "regression", validation_fraction=0)
    features = small.drop(columns=["price"])
    raw = features.astype(object).assign(size_sqm=features["size_sqm"].map(repr))

    np.testing.assert_array_equal(model.predict(raw), model.predict(features))


# --- the step: model directory and metrics ------------------------------------------------------------------------


def _step_inputs(directory, frame, excluded=None):
    """The step's input files as the pipeline hands them over: the rows (Parquet), the schema and the profile."""
    directory.mkdir()
    write_dataset(frame, directory / "train.parquet")
    documents = {
        model_bundle.SCHEMA_FILE: model_bundle.schema.infer(frame, "price", excluded),
        model_bundle.PROFILE_FILE: build_profile(frame, "price"),
    }
    paths = {}
    for name, document in documents.items():
        paths[name] = directory / name
        paths[name].write_text(json.dumps(document))
    return directory / "train.parquet", paths, documents


def test_the_step_writes_a_model_directory_with_the_data_hash_and_the_schemas_column_roles(small, tmp_path):
    frame = small.assign(listing_id=range(len(small)))
    train_path, paths, documents = _step_inputs(
        tmp_path / "inputs", frame, excluded={"listing_id": "identifier: unique integers in sequence"}
    )

    card = train_model_directory(
        train_path,
        paths,
        tmp_path / "model",
        target="price",
        task="regression",
        candidate={"model_type": "linear", "hyperparameters": {"alpha": 2.0}},
        seed=4,
        data_content_sha256="ab" * 32,
        sensitive_columns=["listing_id"],
    )

    bundle = model_bundle.load(tmp_path / "model")  # digest-checked: the directory is complete and consistent
    assert bundle.card == card
    assert card.data_content_sha256 == "ab" * 32
    # An identifier as a sensitive column (unusual, but any excluded column may be): each value is as frequent, so
    # the first 10 names in text order are listed.
    assert card.sensitive_groups == {"listing_id": sorted(str(number) for number in range(len(frame)))[:10]}
    assert card.excluded_columns == {"listing_id": "identifier: unique integers in sequence"}
    assert "listing_id" not in bundle.feature_names
    assert (card.estimator, card.seed, bundle.model.named_steps["estimator"].alpha) == ("Ridge", 4, 2.0)
    assert bundle.documents == documents
    assert len(bundle.predict(frame.drop(columns=["price"]))) == len(frame)


def test_the_step_refuses_a_bad_candidate_and_writes_nothing(small, tmp_path):
    train_path, paths, _ = _step_inputs(tmp_path / "inputs", small)

    with pytest.raises(TrainingError, match=r"unknown key\(s\) \['model'\]"):
        train_model_directory(
            train_path, paths, tmp_path / "model", target="price", task="regression", candidate={"model": "x"}
        )
    assert not (tmp_path / "model").exists()


def test_the_step_needs_the_schema_for_its_column_roles(small, tmp_path):
    train_path, paths, _ = _step_inputs(tmp_path / "inputs", small)
    del paths[model_bundle.SCHEMA_FILE]

    with pytest.raises(TrainingError, match=r"no schema.json among the documents \['reference_profile.json'\]"):
        train_model_directory(train_path, paths, tmp_path / "model", target="price", task="regression", candidate={})


@pytest.mark.parametrize("validation_fraction", [0.2, 0.0])
def test_step_metrics_name_training_and_validation_scores_apart(small, validation_fraction):
    _, card = train(small, "price", "regression", model_type="linear", validation_fraction=validation_fraction)

    metrics = card_metrics(card)

    expected = {f"train_{name}" for name in ("r2", "rmse", "mae", "mape")} | {"fit_seconds", "training_rows"}
    if validation_fraction:
        expected |= {f"validation_{name}" for name in ("r2", "rmse", "mae", "mape")}
    assert set(metrics) == expected
    assert metrics["train_r2"] == card.training_scores["r2"]
    assert metrics["training_rows"] == len(small)
    assert all(isinstance(value, int | float) for value in metrics.values())
