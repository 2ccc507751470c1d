"""model_bundle: saving and integrity-checked loading, and feature typing and coercion shared with serving."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import Pipeline

import model_bundle
from model_bundle import (
    CARD_FILE,
    MODEL_FILE,
    BundleError,
    CardError,
    FeatureError,
    ModelCard,
    coerce_columns,
    coerce_features,
    file_sha256,
    infer_feature_types,
    library_versions,
    load,
    read_card,
    save,
)


@pytest.fixture
def bundle_copy(tmp_path, regression_bundle) -> Path:
    """A private copy of the trained regression bundle that a test may damage."""
    bundle, _ = regression_bundle
    return Path(shutil.copytree(bundle.directory, tmp_path / "model"))


def edit_card(directory: Path, change) -> None:
    card = json.loads((directory / CARD_FILE).read_text())
    change(card)
    (directory / CARD_FILE).write_text(json.dumps(card))


# --- save / load -------------------------------------------------------------------------------------------------


def test_save_then_load_predicts_identically(tmp_path, regression_bundle):
    bundle, test = regression_bundle
    card = dataclasses.replace(bundle.card, sha256="", library_versions={})
    features = test.drop(columns=["price"])

    written = save(tmp_path / "copy", bundle.model, card)
    loaded = load(tmp_path / "copy")

    np.testing.assert_array_equal(loaded.predict(features), bundle.predict(features))
    assert written.sha256 == file_sha256(tmp_path / "copy" / MODEL_FILE)
    assert written.format_version == 2
    assert written.model_file == MODEL_FILE
    assert written.library_versions == library_versions()
    assert loaded.card == written
    assert loaded.directory == tmp_path / "copy"


def test_saved_card_keeps_numpy_values_as_json(tmp_path, classification_bundle):
    bundle, _ = classification_bundle
    scores = {**bundle.card.training_scores, "accuracy": np.float64(0.5)}
    card = dataclasses.replace(bundle.card, classes=np.array(bundle.card.classes), training_scores=scores)

    save(tmp_path / "model", bundle.model, card)

    stored = json.loads((tmp_path / "model" / CARD_FILE).read_text())
    assert stored["classes"] == bundle.card.classes
    assert stored["training_scores"]["accuracy"] == 0.5


def test_card_round_trips_through_json(regression_bundle):
    bundle, _ = regression_bundle

    assert ModelCard.from_json(json.loads(json.dumps(bundle.card.to_json()))) == bundle.card


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"model card has unknown key\(s\) \['colour'\]"),
        ({"task": "ranking"}, r"task must be one of \['regression', 'classification'\], got 'ranking'"),
        ({"features": [{"name": "x", "type": "text"}]}, r"feature 'x' has type 'text'"),
        ({"features": [{"name": "x"}]}, r"each feature must be"),
        ({"task": "classification", "classes": None}, r"a classification model must list its classes"),
    ],
)
def test_a_malformed_card_is_named(regression_bundle, change, message):
    bundle, _ = regression_bundle

    with pytest.raises(CardError, match=message):
        ModelCard.from_json({**bundle.card.to_json(), **change})


def test_bundle_exposes_its_card(classification_bundle):
    bundle, test = classification_bundle

    assert bundle.task == "classification"
    assert bundle.feature_names == [name for name in test.columns if name != "energy_label"]
    assert bundle.features == bundle.card.features


def test_predict_proba_gives_one_column_per_card_class_in_card_order(classification_bundle):
    bundle, test = classification_bundle
    # Raw values as a client sends them: the renovated flag as text is coerced exactly as in predict.
    features = test.drop(columns=["energy_label"]).astype({"renovated": str})

    probabilities = bundle.predict_proba(features)

    assert probabilities.shape == (len(test), len(bundle.card.classes))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    most_probable = np.array(bundle.card.classes)[probabilities.argmax(axis=1)]
    np.testing.assert_array_equal(most_probable, bundle.predict(features))


def test_predict_proba_of_a_regression_model_is_refused(regression_bundle):
    bundle, test = regression_bundle

    with pytest.raises(
        BundleError, match=r"\(HistGradientBoostingRegressor\) is a regression model; only a classifier"
    ):
        bundle.predict_proba(test.drop(columns=["price"]))


def test_predict_proba_of_an_estimator_without_probabilities_is_refused(classification_bundle):
    bundle, test = classification_bundle
    preprocess = bundle.model.named_steps["preprocess"]
    inputs = preprocess.transform(coerce_features(test.drop(columns=["energy_label"]), bundle.features))
    ridge = RidgeClassifier().fit(inputs, test["energy_label"].astype(str))
    without = dataclasses.replace(
        bundle,
        model=Pipeline([("preprocess", preprocess), ("estimator", ridge)]),
        card=dataclasses.replace(bundle.card, estimator="RidgeClassifier"),
    )

    with pytest.raises(BundleError, match=r"\(RidgeClassifier\) has no predict_proba"):
        without.predict_proba(test.drop(columns=["energy_label"]))


def test_predict_proba_refuses_classes_in_another_order_than_the_card(classification_bundle):
    bundle, test = classification_bundle
    reordered = dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, classes=bundle.card.classes[::-1]))

    with pytest.raises(BundleError, match=r"has classes \['A', 'B'.* but its card lists \['G', 'F'"):
        reordered.predict_proba(test.drop(columns=["energy_label"]))


def test_load_with_the_right_expected_digest(bundle_copy):
    loaded = load(bundle_copy, expected_sha256=file_sha256(bundle_copy / MODEL_FILE))

    assert loaded.card.target == "price"


def test_tampered_model_file_is_refused(bundle_copy):
    with open(bundle_copy / MODEL_FILE, "ab") as stream:
        stream.write(b"\0")

    with pytest.raises(BundleError, match=rf"sha256 digest mismatch for {bundle_copy / MODEL_FILE}: its card records"):
        load(bundle_copy)


def test_wrong_expected_digest_is_refused(bundle_copy):
    with pytest.raises(BundleError, match=rf"digest mismatch for .*{MODEL_FILE}: expected {'0' * 64}"):
        load(bundle_copy, expected_sha256="0" * 64)


def test_missing_card_is_named(bundle_copy):
    (bundle_copy / CARD_FILE).unlink()

    with pytest.raises(BundleError, match=rf"no model card: {bundle_copy / CARD_FILE} does not exist"):
        load(bundle_copy)


def test_missing_model_file_is_named(bundle_copy):
    (bundle_copy / MODEL_FILE).unlink()

    with pytest.raises(BundleError, match=rf"no model file: {bundle_copy / MODEL_FILE} does not exist"):
        load(bundle_copy)


def test_card_that_is_not_json_is_named(bundle_copy):
    (bundle_copy / CARD_FILE).write_text("{not json")

    with pytest.raises(BundleError, match=rf"model card {bundle_copy / CARD_FILE} is not valid JSON"):
        read_card(bundle_copy)


def test_card_missing_keys_names_them(bundle_copy):
    def drop_keys(card):
        del card["sha256"]
        del card["features"]

    edit_card(bundle_copy, drop_keys)

    with pytest.raises(BundleError, match=r"lacks required key\(s\) \['sha256', 'features'\]"):
        load(bundle_copy)


def test_card_of_another_format_version_is_refused(bundle_copy):
    edit_card(bundle_copy, lambda card: card.update(format_version=1))

    with pytest.raises(BundleError, match=r"has format_version 1, expected 2"):
        load(bundle_copy)


def test_model_written_by_another_scikit_learn_is_refused(bundle_copy):
    edit_card(bundle_copy, lambda card: card["library_versions"].update({"scikit-learn": "0.24.2"}))

    with pytest.raises(BundleError, match=r"written by scikit-learn 0\.24\.2 but this runtime has"):
        load(bundle_copy)


# --- the documents beside the model: one check, used by load and by the registry ----------------------------------


def test_documents_are_read_after_their_digests_are_checked(bundle_copy, regression_bundle):
    bundle, _ = regression_bundle

    documents = model_bundle.read_documents(bundle_copy, read_card(bundle_copy))

    assert documents == bundle.documents == load(bundle_copy).documents
    assert set(documents) == {model_bundle.SCHEMA_FILE, model_bundle.PROFILE_FILE}


@pytest.mark.parametrize("name", ["schema.json", "reference_profile.json"])
def test_an_altered_document_is_refused_naming_it_and_both_digests(bundle_copy, name):
    recorded = read_card(bundle_copy).documents[name]
    (bundle_copy / name).write_text("{}")

    for read in (lambda: model_bundle.read_documents(bundle_copy, read_card(bundle_copy)), lambda: load(bundle_copy)):
        with pytest.raises(
            BundleError,
            match=rf"sha256 digest mismatch for {bundle_copy / name}: its card records {recorded}, found "
            rf"{file_sha256(bundle_copy / name)}; refusing to load",
        ):
            read()


def test_a_listed_document_that_is_missing_is_named(bundle_copy):
    (bundle_copy / "reference_profile.json").unlink()

    with pytest.raises(BundleError, match=r"reference_profile\.json is listed in the model card but does not exist"):
        model_bundle.read_documents(bundle_copy, read_card(bundle_copy))


@pytest.mark.parametrize("name", ["../schema.json", "sub/schema.json", "model.json", "notes.txt"])
def test_a_document_name_that_is_not_a_plain_json_file_beside_the_model_is_refused(bundle_copy, name):
    edit_card(bundle_copy, lambda card: card["documents"].update({name: "0" * 64}))

    with pytest.raises(BundleError, match=rf"document name {name!r} must be a plain \*\.json file name"):
        model_bundle.read_documents(bundle_copy, read_card(bundle_copy))


def test_package_exports_the_documented_names():
    assert set(model_bundle.__all__) >= {"Bundle", "BundleError", "FeatureError", "load", "save", "coerce_features"}


# --- features ----------------------------------------------------------------------------------------------------

FEATURES = [{"name": "size", "type": "numeric"}, {"name": "area", "type": "categorical"}]


def test_infer_feature_types_in_column_order():
    frame = pd.DataFrame(
        {
            "size": [1.5],
            "rooms": [3],
            "renovated": [True],
            "area": ["north"],
            "price": [1.0],
        }
    )

    assert infer_feature_types(frame, exclude=["price"]) == [
        {"name": "size", "type": "numeric"},
        {"name": "rooms", "type": "numeric"},
        {"name": "renovated", "type": "categorical"},  # booleans travel as "True"/"False"
        {"name": "area", "type": "categorical"},
    ]


def test_coerce_follows_the_card_order_and_types():
    frame = pd.DataFrame({"area": ["north", "south"], "size": [80, 95]})

    coerced = coerce_features(frame, FEATURES)

    assert list(coerced.columns) == ["size", "area"]
    assert coerced["size"].dtype == "float64"
    assert coerced["size"].tolist() == [80.0, 95.0]
    assert coerced["area"].tolist() == ["north", "south"]


def test_coerce_keeps_the_row_index():
    frame = pd.DataFrame({"size": [1.0, 2.0], "area": ["a", "b"]}, index=[7, 3])

    assert coerce_features(frame, FEATURES).index.tolist() == [7, 3]


def test_categorical_values_become_strings_and_missing_stays_nan():
    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0, 5.0], "area": [1, None, "x", True, np.nan]})

    area = coerce_features(frame, FEATURES)["area"]

    assert area.iloc[0] == "1"
    assert area.iloc[2] == "x"
    assert area.iloc[3] == "True"
    assert np.isnan(area.iloc[1])
    assert np.isnan(area.iloc[4])


def test_boolean_column_coerces_like_training(houses):
    features = [{"name": "renovated", "type": "categorical"}]

    from_training = coerce_features(houses[["renovated"]].head(4), features)
    from_json = coerce_features(
        pd.DataFrame({"renovated": houses["renovated"].head(4).tolist()}, dtype=object), features
    )

    assert set(from_training["renovated"]) <= {"True", "False"}
    pd.testing.assert_frame_equal(from_training, from_json)


def test_numeric_text_and_missing_values_are_accepted():
    frame = pd.DataFrame({"size": ["80.5", None, "nan", 7], "area": ["a"] * 4})

    size = coerce_features(frame, FEATURES)["size"]

    assert size.iloc[0] == 80.5
    assert size.iloc[3] == 7.0
    assert size.iloc[1:3].isna().all()


def test_blank_text_in_a_numeric_column_is_refused_as_the_model_refuses_it():
    # The model's own typing (AS_NUMBER) cannot read "" as a number; the checks say so first, naming the column.
    frame = pd.DataFrame({"size": ["80.5", ""], "area": ["a", "b"]})

    with pytest.raises(FeatureError, match=r"column 'size' is numeric but got 1 non-numeric value\(s\), e.g. \[''\]"):
        coerce_features(frame, FEATURES)


def test_missing_and_unknown_columns_are_named():
    frame = pd.DataFrame({"size": [1.0], "garden": [True]})

    with pytest.raises(
        FeatureError,
        match=r"missing column\(s\) \['area'\]; unknown column\(s\) \['garden'\]; the model expects \['size', 'area'\]",
    ):
        coerce_features(frame, FEATURES)


def test_missing_column_alone_is_named():
    with pytest.raises(FeatureError, match=r"^missing column\(s\) \['area'\]; the model expects"):
        coerce_features(pd.DataFrame({"size": [1.0]}), FEATURES)


def test_duplicate_columns_are_named():
    frame = pd.DataFrame([[1.0, 2.0, "a"]], columns=["size", "size", "area"])

    with pytest.raises(FeatureError, match=r"duplicate column\(s\) \['size'\]"):
        coerce_features(frame, FEATURES)


def test_text_in_numeric_column_names_column_and_example():
    frame = pd.DataFrame({"size": ["80", "big", "95", "huge"], "area": ["a"] * 4})

    with pytest.raises(
        FeatureError, match=r"column 'size' is numeric but got 2 non-numeric value\(s\), e\.g\. \['big', 'huge'\]"
    ):
        coerce_features(frame, FEATURES)


def test_boolean_column_in_numeric_feature_is_rejected():
    frame = pd.DataFrame({"size": [True, False], "area": ["a", "b"]})

    with pytest.raises(
        FeatureError, match=r"column 'size' is numeric but got boolean value\(s\), e.g. \[True, False\]"
    ):
        coerce_features(frame, FEATURES)


def test_boolean_values_in_numeric_feature_are_rejected():
    frame = pd.DataFrame({"size": [80.0, True, None], "area": ["a", "b", "c"]}, dtype=object)

    with pytest.raises(FeatureError, match=r"column 'size' is numeric but got boolean value\(s\) \[True\]"):
        coerce_features(frame, FEATURES)


def test_unknown_feature_type_is_named():
    with pytest.raises(FeatureError, match=r"column 'size' has unknown feature type 'date'"):
        coerce_features(pd.DataFrame({"size": [1.0]}), [{"name": "size", "type": "date"}])


@pytest.mark.parametrize("infinite", [float("inf"), float("-inf"), "inf"])
def test_infinite_value_in_numeric_feature_is_rejected_naming_the_column(infinite):
    frame = pd.DataFrame({"size": [1.0, infinite], "area": ["a", "b"]})

    with pytest.raises(FeatureError, match=r"column 'size' has 1 infinite value\(s\)"):
        coerce_features(frame, FEATURES)


@pytest.mark.parametrize(
    "columns",
    [
        {"size": [1, 2.5, None], "area": ["a", None, "b"]},
        {"size": [120.0], "area": ["north"]},
        {"size": ["12.5", "7", None], "area": [1, 2.5, None]},  # numbers as text; numbers as categories
        {"size": [3, 4, 5], "area": [True, False, float("nan")]},
        {"size": [1.0, "lots"], "area": ["a", "b"]},  # text in a numeric column: same error
        {"size": [1.0, True], "area": ["a", "b"]},  # a boolean in a numeric column: same error
        {"size": [1.0, float("inf")], "area": ["a", "b"]},
        {"size": [1.0], "area": ["a"], "extra": [1]},
    ],
)
def test_serving_coercion_of_columns_equals_training_coercion_of_a_frame(columns):
    """The model server's fast path (plain sequences) must coerce exactly as training does (a DataFrame).

    The reference frame holds the very same values (object columns): pd.DataFrame's own type inference would
    turn a category column [1, 2.5] into floats ("1.0"), which is not a value any request or training row held.
    """
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    try:
        expected = coerce_features(frame, FEATURES)
    except FeatureError as error:
        with pytest.raises(FeatureError) as raised:
            coerce_columns(columns, FEATURES)
        assert str(raised.value) == str(error)
        return
    pd.testing.assert_frame_equal(coerce_columns(columns, FEATURES), expected)


def test_serving_coercion_takes_numeric_arrays():
    columns = {"size": np.array([1, 2]), "area": ["a", "b"]}

    coerced = coerce_columns(columns, FEATURES)

    assert coerced["size"].dtype == "float64"
    assert coerced["size"].tolist() == [1.0, 2.0]


def test_columns_the_card_excludes_are_ignored_but_unknown_ones_are_named():
    columns = {"size": [1.0], "area": ["a"], "listing_id": [17], "price": [250_000.0]}

    typed = coerce_columns(columns, FEATURES, ignore=["listing_id", "price"])

    assert list(typed.columns) == ["size", "area"]
    with pytest.raises(FeatureError, match=r"unknown column\(s\) \['listing_id'\]"):
        coerce_columns(columns, FEATURES, ignore=["price"])


def test_bundle_ignores_its_target_and_excluded_columns_in_requests(regression_bundle):
    bundle, _ = regression_bundle
    excluded = dataclasses.replace(bundle.card, excluded_columns={"listing_id": "identifier"})

    assert dataclasses.replace(bundle, card=excluded).non_feature_columns == ["price", "listing_id"]
