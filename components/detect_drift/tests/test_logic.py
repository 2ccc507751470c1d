"""detect_drift: no drift on fresh samples of the training distribution (false positives measured over 20
seeds), drift on a shifted mean, a changed category mix and a new category; tests chosen by type and size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import model_bundle
from components._common import registry
from components.detect_drift.logic import (
    JENSEN_SHANNON_MAX,
    DriftError,
    DriftPolicy,
    champion_reference,
    choose_test,
    detect,
    reference_sample,
    render_summary,
)
from components.ingest_data.samples import house_prices
from components.register_model.logic import register
from components.train_model.logic import train
from model_bundle.profile import build_profile

FEATURES = [
    {"name": "size_sqm", "type": "numeric"},
    {"name": "rooms", "type": "numeric"},
    {"name": "age_years", "type": "numeric"},
    {"name": "renovated", "type": "categorical"},
    {"name": "distance_to_center_km", "type": "numeric"},
    {"name": "neighbourhood", "type": "categorical"},
    {"name": "energy_label", "type": "categorical"},
]
SEEDS = range(100, 120)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """The reference as the pipeline keeps it: a sample of the training rows inside the reference profile."""
    return reference_sample(build_profile(house_prices(rows=2000, seed=1), "price"))


def batch(seed: int = 5, rows: int = 500) -> pd.DataFrame:
    return house_prices(rows=rows, seed=seed).drop(columns=["price"])


def drifted(result) -> list[str]:
    return sorted(result.drifted_features)


def test_fresh_samples_of_the_training_distribution_are_not_drift(reference):
    results = [detect(reference, batch(seed), FEATURES, DriftPolicy()) for seed in SEEDS]

    dataset_flags = sum(result.dataset_drift for result in results)
    feature_flags = sum(len(result.drifted_features) for result in results)
    feature_rate = feature_flags / (len(SEEDS) * len(FEATURES))
    print(f"false positives over {len(SEEDS)} seeds: data {dataset_flags}/{len(SEEDS)}, features {feature_rate:.1%}")
    assert dataset_flags == 0
    assert feature_rate <= 0.10


def test_a_shifted_mean_is_drift(reference):
    current = batch()
    current["size_sqm"] += 0.5 * current["size_sqm"].std()

    result = detect(reference, current, FEATURES, DriftPolicy())
    size = next(feature for feature in result.features if feature.column == "size_sqm")

    assert size.drifted and size.test == "wasserstein" and size.score >= 0.3
    assert detect(reference, current, FEATURES, DriftPolicy(drift_share=0.1)).dataset_drift


def test_a_changed_category_mix_is_drift(reference):
    current = batch()
    current["neighbourhood"] = np.random.default_rng(0).choice(["Old Town", "Harbour"], size=len(current), p=[0.8, 0.2])

    result = detect(reference, current, FEATURES, DriftPolicy())

    assert "neighbourhood" in result.drifted_features
    neighbourhood = next(feature for feature in result.features if feature.column == "neighbourhood")
    assert neighbourhood.test == "jensenshannon" and neighbourhood.unseen_categories == ()


def test_a_new_category_is_drift_and_named(reference):
    current = batch()
    current.loc[current.index[:100], "energy_label"] = "H"

    result = detect(reference, current, FEATURES, DriftPolicy())
    label = next(feature for feature in result.features if feature.column == "energy_label")

    assert label.drifted
    assert label.unseen_categories == ("H",)
    assert label.unseen_share == pytest.approx(100 / len(current))
    assert "['H'] (20.0% of rows)" in render_summary(result)


def test_the_data_drifts_when_enough_features_do(reference):
    current = batch()
    for column in ("size_sqm", "age_years", "distance_to_center_km", "rooms"):
        current[column] = current[column] * 1.6

    result = detect(reference, current, FEATURES, DriftPolicy())

    assert result.drifted_share >= 0.5
    assert result.dataset_drift
    summary = render_summary(result)
    assert summary.startswith("# Drift detected\n")
    # The verdict names the features that drifted (run_local.py prints it after a monitoring run).
    assert f"features drifted ({result.drifted_share:.0%}: {', '.join(result.drifted_features)});" in summary


@pytest.mark.parametrize(
    ("size", "correction", "line"),
    [
        (2000, "bonferroni", "distances drift from 0.1."),
        (800, "bonferroni", "p-value tests drift below alpha 0.05 divided by their number (Bonferroni)."),
        (800, "none", "p-value tests drift below alpha 0.05."),
    ],
)
def test_the_summary_names_the_thresholds_of_the_tests_that_ran(reference, size, correction, line):
    result = detect(reference.head(size), batch(), FEATURES, DriftPolicy(correction=correction))

    assert render_summary(result).split("\n")[4] == line


def test_the_summary_names_both_kinds_of_test_when_both_ran(reference):
    # A feature with 800 reference values (the rest missing) gets a p-value test, the others distances.
    mixed = reference.assign(renovated=reference["renovated"].where(np.arange(len(reference)) < 800))

    result = detect(mixed, batch(), FEATURES, DriftPolicy())

    assert render_summary(result).split("\n")[4] == (
        "p-value tests drift below alpha 0.05 divided by their number (Bonferroni); distances drift from 0.1."
    )


def test_small_references_get_p_value_tests_with_bonferroni(reference):
    small = reference.head(800)

    corrected = detect(small, batch(), FEATURES, DriftPolicy())
    uncorrected = detect(small, batch(), FEATURES, DriftPolicy(correction="none"))

    assert {feature.column: feature.test for feature in corrected.features} == {
        "size_sqm": "ks",
        "rooms": "ks",
        "age_years": "ks",
        "renovated": "chi2_homogeneity",
        "distance_to_center_km": "ks",
        "neighbourhood": "chi2_homogeneity",
        "energy_label": "chi2_homogeneity",
    }
    assert [feature.threshold for feature in corrected.features] == pytest.approx([0.05 / 7] * 7)
    assert {feature.threshold for feature in uncorrected.features} == {0.05}
    assert all(0 <= feature.score <= 1 for feature in corrected.features)
    assert set(drifted(corrected)) <= set(drifted(uncorrected))


def test_a_small_reference_does_not_call_larger_batches_of_its_distribution_drift(reference):
    # Evidently's chisquare took the reference's shares as exact: 5,000 rows against 1,000 flagged neighbourhood and
    # energy_label on every seed (p 1e-7 and below).
    small = reference.head(1000)
    results = [detect(small, batch(seed, rows=5000), FEATURES, DriftPolicy()) for seed in range(200, 205)]

    flagged = [name for result in results for name in drifted(result) if name in ("neighbourhood", "energy_label")]
    assert len(flagged) <= 1, flagged
    assert not any(result.dataset_drift for result in results)


def test_a_two_category_column_whose_value_is_replaced_by_a_new_one_drifts(reference):
    # Evidently's z-test compares the first category with the rest, so a new value merged with the one it replaced.
    current = batch().assign(renovated=lambda frame: frame["renovated"].map({True: "unknown", False: False}))

    result = detect(reference.head(800), current, FEATURES, DriftPolicy())

    renovated = next(feature for feature in result.features if feature.column == "renovated")
    assert renovated.drifted and renovated.unseen_categories == ("unknown",)


@pytest.mark.parametrize(
    ("feature_type", "values", "test"),
    [
        ("numeric", range(1000), "ks"),
        ("numeric", range(1001), "wasserstein"),
        ("categorical", ["a", "b"] * 500, "chi2_homogeneity"),
        ("categorical", ["a", "b", "c"] * 300, "chi2_homogeneity"),
        ("categorical", ["a", "b"] * 501, "jensenshannon"),
    ],
)
def test_the_test_follows_type_and_reference_size(feature_type, values, test):
    assert choose_test(feature_type, pd.Series(list(values))) == test


def test_a_feature_missing_from_the_new_data_is_named(reference):
    with pytest.raises(DriftError, match=r"the new data lacks feature column\(s\) \['rooms'\] of the model"):
        detect(reference, batch().drop(columns=["rooms"]), FEATURES, DriftPolicy())


@pytest.mark.parametrize("size", [800, 2000])  # p-value tests and distances
def test_a_feature_without_values_in_the_new_data_is_named(reference, size):
    current = batch().assign(rooms=None, neighbourhood=np.nan)

    with pytest.raises(
        DriftError,
        match=r"feature column\(s\) \['rooms', 'neighbourhood'\] of the new data have no values \(every row is "
        r"missing\), so their drift cannot be tested: fill them in the batch",
    ):
        detect(reference.head(size), current, FEATURES, DriftPolicy())


def test_too_small_a_batch_is_refused(reference):
    with pytest.raises(DriftError, match=r"the new data has 10 rows, fewer than drift_policy\['min_rows'\]=30"):
        detect(reference, batch(rows=10), FEATURES, DriftPolicy())


def test_a_profile_without_a_sample_is_named():
    with pytest.raises(DriftError, match=r"the reference profile holds no sample of training rows"):
        reference_sample({"rows": 10, "columns": {}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"drift_shares": 0.3}, r"unknown key\(s\) \['drift_shares'\]"),
        ({"correction": "holm"}, r"drift_policy\['correction'\] must be 'bonferroni' or 'none'"),
        ({"drift_share": 0.0}, r"drift_policy\['drift_share'\] must be in \(0, 1\]"),
        ({"alpha": "0.05"}, r"drift_policy\['alpha'\] must be a float"),
        ({"min_rows": 2.5}, r"drift_policy\['min_rows'\] must be an integer, got 2.5"),
        ({"distance_threshold": 0.0}, r"drift_policy\['distance_threshold'\] must be above 0 and at most sqrt"),
        (
            {"distance_threshold": 0.9},
            r"drift_policy\['distance_threshold'\] must be above 0 and at most sqrt\(ln 2\) = 0\.8325\.\.\., got 0\.9: "
            r"the Jensen-Shannon distance of a category reaches sqrt\(ln 2\)",
        ),
    ],
)
def test_bad_policy_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        DriftPolicy.from_mapping(values)


def test_the_largest_distance_threshold_still_flags_a_category_replaced_by_another(reference):
    # The Jensen-Shannon distance of categories never exceeds sqrt(ln 2); a threshold of it still flags the worst
    # case, where a larger one (refused above) would flag no category at all. Numbers' normed Wasserstein distance
    # has no such bound: five standard deviations measure about 5.
    current = batch().assign(neighbourhood="Nowhere")
    current["size_sqm"] += 5 * current["size_sqm"].std()

    policy = DriftPolicy.from_mapping({"distance_threshold": JENSEN_SHANNON_MAX})
    features = {feature.column: feature for feature in detect(reference, current, FEATURES, policy).features}

    assert features["neighbourhood"].test == "jensenshannon" and features["neighbourhood"].drifted
    assert features["neighbourhood"].score == pytest.approx(JENSEN_SHANNON_MAX)
    assert features["size_sqm"].test == "wasserstein" and features["size_sqm"].score > 1


def test_policy_from_a_kfp_dict():
    assert DriftPolicy.from_mapping({"min_rows": 50.0, "drift_share": 1}) == DriftPolicy(min_rows=50, drift_share=1.0)


# --- the champion's reference in a real registry -----------------------------------------------------------------


def test_the_reference_is_the_champions_training_sample(mlflow_state, tmp_path):
    frame = house_prices(rows=300, seed=2)
    pipeline, card = train(frame, "price", "regression", model_type="linear")
    directory = tmp_path / "model"
    model_bundle.save(directory, pipeline, card, {model_bundle.PROFILE_FILE: build_profile(frame, "price")})
    version = register("", "houses", directory, {"r2": 0.5}, True, "approved").version

    with pytest.raises(DriftError, match=r"model 'houses' has no champion with a reference profile"):
        champion_reference("", "houses")

    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    sample, features = champion_reference("", "houses")

    assert features == card.features
    assert len(sample) == 300
    pd.testing.assert_series_equal(
        sample["size_sqm"].sort_values(ignore_index=True), frame["size_sqm"].sort_values(ignore_index=True)
    )


def test_the_reference_is_read_with_one_registry_look_up(mlflow_state, regression_bundle, monkeypatch):
    from mlflow import MlflowClient

    bundle, _ = regression_bundle
    version = register("", "houses", bundle.directory, {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    lookups = []
    look_up = MlflowClient.get_model_version_by_alias
    monkeypatch.setattr(
        MlflowClient, "get_model_version_by_alias", lambda self, *args: lookups.append(args) or look_up(self, *args)
    )

    sample, features = champion_reference("", "houses")

    assert lookups == [("houses", registry.CHAMPION)]
    assert features == bundle.card.features and len(sample) > 0
