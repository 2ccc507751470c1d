"""serving.feature_monitor: request values counted per training decile or category, and a drift gauge that stays
near 0 for training-like traffic and rises when the traffic moves (the model server exports them to Prometheus:
tests/serving/test_http.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from components.ingest_data.samples import house_prices
from model_bundle import coerce_features, infer_feature_types
from model_bundle.profile import build_profile
from serving.feature_monitor import HALF_LIFE_ROWS, FeatureMonitor


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return house_prices(rows=4000, seed=1)


@pytest.fixture
def monitor(training) -> FeatureMonitor:
    return FeatureMonitor(build_profile(training, "price"), infer_feature_types(training, exclude=["price"]))


def requests_like(frame: pd.DataFrame, monitor: FeatureMonitor) -> pd.DataFrame:
    """Rows as the server has them when it predicts: coerced to the model's feature types."""
    features = [{"name": f.name, "type": "numeric" if f.edges is not None else "categorical"} for f in monitor.features]
    return coerce_features(frame[[f["name"] for f in features]], features)


def gauges(metrics: list[dict]) -> dict[str, float]:
    return {m["tags"]["feature"]: m["value"] for m in metrics if m["key"] == "model_feature_drift"}


def test_values_are_counted_per_training_decile_and_category(monitor):
    rows = pd.DataFrame(
        {
            "size_sqm": [-5.0, 80.0, 10_000.0, None],
            "rooms": [3.0] * 4,
            "age_years": [10.0] * 4,
            "renovated": ["True"] * 4,
            "distance_to_center_km": [2.0] * 4,
            "neighbourhood": ["Riverside", "Atlantis", "Riverside", None],
            "energy_label": ["B"] * 4,
        }
    )

    metrics = monitor.observe(rows)

    counts = {
        (m["tags"]["feature"], m["tags"]["bin"]): m["value"] for m in metrics if m["key"] == "model_feature_values"
    }
    size_bins = {bin_: count for (feature, bin_), count in counts.items() if feature == "size_sqm"}
    assert size_bins.pop("below") == 1 and size_bins.pop("above") == 1
    assert list(size_bins.values()) == [1] and next(iter(size_bins)) in {str(n) for n in range(1, 11)}
    assert counts[("neighbourhood", "Riverside")] == 2
    assert counts[("neighbourhood", "(other)")] == 1  # a category training never had; the missing one is not counted
    assert all(m["type"] == "COUNTER" and m["value"] > 0 for m in metrics if m["key"] == "model_feature_values")


def test_drift_stays_low_for_traffic_like_training_and_rises_when_it_moves(monitor):
    fresh = requests_like(house_prices(rows=2000, seed=9), monitor)
    calm = {}
    for start in range(0, len(fresh), 50):  # requests of 50 rows
        calm = gauges(monitor.observe(fresh.iloc[start : start + 50]))

    assert set(calm) == {f.name for f in monitor.features}
    assert max(calm.values()) < 0.1

    moved = fresh.assign(size_sqm=fresh["size_sqm"] * 2, neighbourhood="Harbour")
    shifted = {}
    for start in range(0, len(moved), 50):
        shifted = gauges(monitor.observe(moved.iloc[start : start + 50]))

    assert shifted["size_sqm"] > 0.4
    assert shifted["neighbourhood"] > 0.5
    assert shifted["energy_label"] < 0.1  # untouched features stay calm


def test_recent_rows_weigh_more_than_old_ones(monitor):
    old = requests_like(house_prices(rows=500, seed=3), monitor).assign(neighbourhood="Harbour")
    monitor.observe(old)
    after_old = gauges(monitor.observe(old.head(1)))["neighbourhood"]
    fresh = requests_like(house_prices(rows=HALF_LIFE_ROWS * 5, seed=4), monitor)

    after_fresh = gauges(monitor.observe(fresh))["neighbourhood"]

    assert after_old > 0.5
    assert after_fresh < 0.1


def test_without_a_profile_there_are_no_feature_signals(training):
    assert FeatureMonitor({}, infer_feature_types(training, exclude=["price"])).observe(training) == []


def test_drift_is_a_distance_between_zero_and_one(monitor):
    rows = requests_like(house_prices(rows=300, seed=5), monitor).assign(size_sqm=1e9)
    values = gauges(monitor.observe(rows))

    assert values["size_sqm"] == pytest.approx(1.0)
    assert all(0.0 <= value <= 1.0 for value in values.values())
