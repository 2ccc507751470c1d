"""Sensitive groups: how a value is named as a group (model_bundle.groups), the model card's ``sensitive_groups``
(old cards without it still load), and the model server's per-group series (serving.metrics.ModelSignals, read
from prometheus_client's registry in process; tests/serving/test_group_metrics.py scrapes real servers)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY

import model_bundle
from components.train_model.logic import train
from model_bundle import CARD_FILE, MISSING_GROUP, NOT_SENT_GROUP, OTHER_GROUP, CardError, ModelCard
from model_bundle.groups import NAMED_ONE_BY_ONE, GroupCoder, group_name, top_groups
from serving.metrics import ModelSignals

# --- naming values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Riverside", "Riverside"),
        ("", ""),
        (True, "True"),
        (np.bool_(False), "False"),
        (3, "3"),
        (np.int64(3), "3"),
        (3.0, "3"),  # a JSON client's 3, or a Parquet float column's
        (np.float64(-2.0), "-2"),
        (2.5, "2.5"),
        (None, None),
        (float("nan"), None),
        (np.nan, None),
        (pd.NA, None),
    ],
)
def test_a_value_is_named_as_a_category(value, name):
    assert group_name(value) == name


def test_top_groups_are_the_most_frequent_first_ties_by_name_missing_left_out():
    frame = pd.DataFrame(
        {
            "city": ["b", "a", "b", None, "c", "a", "b", np.nan, "d", "(other)", "(other)", "(other)"],
            "code": [1.0, 1, 2, 2.0, 2, 3, 3, 3, 4, np.nan, np.nan, np.nan],
        }
    )

    groups = top_groups(frame, ["city", "code"], limit=3)

    # "(other)" is a reserved label: data that holds it is counted as it, never listed.
    # 1 and 1.0 are one group; "2" and "3" are as frequent: name order.
    assert groups == {"city": ["b", "a", "c"], "code": ["2", "3", "1"]}


def test_top_groups_lists_at_most_the_limit():
    frame = pd.DataFrame({"x": [f"g{number:02d}" for number in range(30) for _ in range(number + 1)]})

    assert top_groups(frame, ["x"]) == {"x": [f"g{number:02d}" for number in range(29, 19, -1)]}


# --- coding values as group positions ----------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, NAMED_ONE_BY_ONE, NAMED_ONE_BY_ONE + 1, 500])
def test_codes_name_listed_other_and_missing_values_alike_for_any_number_of_rows(rows):
    coder = GroupCoder(["Riverside", "3", "True"])
    cycle = ["Riverside", None, "Docklands", 3.0, np.nan, True, 3, "3", False]
    expected = [0, 4, 3, 1, 4, 2, 1, 1, 3]
    values = [cycle[row % len(cycle)] for row in range(rows)]

    codes = coder.codes(values, rows)

    assert codes.tolist() == [expected[row % len(cycle)] for row in range(rows)]
    assert coder.labels == ["Riverside", "3", "True", OTHER_GROUP, MISSING_GROUP, NOT_SENT_GROUP]
    floats = np.array([3.0, np.nan, 2.5] * (rows // 3 + 1))[:rows]
    assert coder.codes(floats, rows).tolist() == [[1, 4, 3][row % 3] for row in range(rows)]


def test_a_column_not_sent_is_one_group():
    coder = GroupCoder(["a"])

    assert [coder.labels[code] for code in coder.codes(None, 3)] == [NOT_SENT_GROUP] * 3


# --- the model card --------------------------------------------------------------------------------------------


def test_a_card_written_before_sensitive_groups_existed_still_loads(tmp_path, regression_bundle):
    bundle, _ = regression_bundle
    directory = shutil.copytree(bundle.directory, tmp_path / "model")
    card = json.loads((directory / CARD_FILE).read_text())
    del card["sensitive_groups"]
    (directory / CARD_FILE).write_text(json.dumps(card))
    # The card's own digest is the registry's business (card_sha256 tag); the files load as an older release's.

    loaded = model_bundle.read_card(directory)

    assert loaded.sensitive_groups == {}
    assert loaded.format_version == 2


def test_the_fixture_cards_list_the_neighbourhoods(regression_bundle, houses):
    bundle, _ = regression_bundle

    assert set(bundle.card.sensitive_groups["neighbourhood"]) == set(houses["neighbourhood"].dropna())


@pytest.mark.parametrize(
    ("sensitive_groups", "message"),
    [
        (["neighbourhood"], r"sensitive_groups must be an object"),
        ({"owner_sex": ["f"]}, r"names column 'owner_sex', which is neither a feature nor an excluded column"),
        ({"neighbourhood": "Riverside"}, r"sensitive_groups\['neighbourhood'\] must be a list of strings"),
        ({"neighbourhood": [1]}, r"must be a list of strings"),
        ({"neighbourhood": ["a", "a"]}, r"at most 10 distinct groups"),
        ({"neighbourhood": [str(number) for number in range(11)]}, r"at most 10 distinct groups"),
        ({"neighbourhood": ["a", "(missing)"]}, r"lists the reserved label\(s\) \['\(missing\)'\]"),
    ],
)
def test_a_malformed_sensitive_groups_is_named(regression_bundle, sensitive_groups, message):
    bundle, _ = regression_bundle

    with pytest.raises(CardError, match=message):
        ModelCard.from_json({**bundle.card.to_json(), "sensitive_groups": sensitive_groups})


# --- the server's per-group series ------------------------------------------------------------------------------


def _sample(metric: str, **labels) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


@pytest.fixture(scope="module")
def signed_regressor(tmp_path_factory) -> model_bundle.Bundle:
    """A regressor whose predictions are negative in one group and positive in another, audited on an excluded
    column."""
    rng = np.random.default_rng(0)
    rows = 200
    frame = pd.DataFrame({"x": rng.normal(size=rows), "side": rng.choice(["left", "right"], size=rows)})
    frame["y"] = np.where(frame["side"] == "left", -10.0, 10.0) + frame["x"]
    frame["region"] = rng.choice(["north", "south"], size=rows)
    model, card = train(
        frame,
        "y",
        "regression",
        model_type="linear",
        validation_fraction=0,
        excluded_columns={"region": "exclude_columns"},
        sensitive_columns=["side", "region"],
    )
    directory = tmp_path_factory.mktemp("signed") / "model"
    model_bundle.save(directory, model, card)
    return model_bundle.load(directory)


def test_a_regressors_sums_per_group_keep_negative_predictions_apart(signed_regressor):
    signals = ModelSignals("unit-signed", signed_regressor)
    raw = pd.DataFrame({"x": [0.5, -0.5, 0.0], "side": ["left", "right", None]})
    features = model_bundle.coerce_features(raw, signed_regressor.features)
    predictions = np.asarray(signed_regressor.predict(features))
    assert predictions[0] < 0 < predictions[1]

    signals.record(features, predictions, {"region": ["north", "south", "west"]})
    signals.record(features.head(1), predictions[:1])  # region not sent

    def total(metric, column, group, **more):
        return _sample(metric, model_name="unit-signed", column=column, group=group, **more)

    sums = "model_group_prediction_sum_total"
    assert total(sums, "side", "left", sign="negative") == pytest.approx(-2 * predictions[0])
    assert total(sums, "side", "left", sign="positive") == 0
    assert total(sums, "side", "right", sign="positive") == pytest.approx(predictions[1])
    assert total("model_group_predictions_total", "side", "left") == 2
    assert total("model_group_predictions_total", "side", MISSING_GROUP) == 1
    assert total("model_group_predictions_total", "region", "north") == 1
    assert total("model_group_predictions_total", "region", OTHER_GROUP) == 1
    assert total("model_group_predictions_total", "region", NOT_SENT_GROUP) == 1
    # A feature is always sent: it has no "(not sent)" series; an excluded column has.
    assert (
        REGISTRY.get_sample_value(
            "model_group_predictions_total", {"model_name": "unit-signed", "column": "side", "group": NOT_SENT_GROUP}
        )
        is None
    )


def test_every_group_and_class_series_exists_from_the_start_at_zero(classification_bundle):
    bundle, _ = classification_bundle
    ModelSignals("unit-zero", bundle)
    groups = [*bundle.card.sensitive_groups["neighbourhood"], OTHER_GROUP, MISSING_GROUP]

    for group in groups:
        labels = {"model_name": "unit-zero", "column": "neighbourhood", "group": group}
        assert REGISTRY.get_sample_value("model_group_predictions_total", labels) == 0, group
        for label in bundle.card.classes:
            assert REGISTRY.get_sample_value("model_group_predicted_class_total", {**labels, "class": label}) == 0


def test_a_batch_counts_classes_per_group_as_row_by_row_does(classification_bundle):
    bundle, test = classification_bundle
    features = model_bundle.coerce_features(test[bundle.feature_names], bundle.features)
    predictions = np.asarray(bundle.predict(features))
    assert len(features) > NAMED_ONE_BY_ONE  # the vectorised path
    together, alone = ModelSignals("unit-batch", bundle), ModelSignals("unit-rows", bundle)

    together.record(features, predictions)
    for row in range(len(features)):
        alone.record(features.iloc[[row]], predictions[row : row + 1])

    groups = features["neighbourhood"].fillna(MISSING_GROUP)
    expected = pd.crosstab(groups, pd.Series(predictions, index=features.index, name="class"))
    for name in ("unit-batch", "unit-rows"):
        for group, counts in expected.iterrows():
            labels = {"model_name": name, "column": "neighbourhood", "group": group}
            assert _sample("model_group_predictions_total", **labels) == counts.sum(), (name, group)
            for label, count in counts.items():
                assert _sample("model_group_predicted_class_total", **labels, **{"class": label}) == count
