"""detect_drift's fairness on labelled batches: the champion's gaps between the groups of a sensitive column,
held to absolute limits; an alert only beyond noise, nothing assessed without labels, small groups not judged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_difference, demographic_parity_ratio
from sklearn.metrics import mean_absolute_error

import model_bundle
from components.detect_drift.fairness_monitor import (
    NO_LABELS,
    assess_batch,
    fairness_metrics,
    render_fairness,
)
from components.detect_drift.logic import DEFAULT_FAIRNESS_LIMITS, DriftError, DriftPolicy


class Predicting:
    """Stands in for a loaded bundle: its predictions are the batch's ``prediction`` column, so each test says
    what the champion predicts for every row."""

    def predict(self, features: pd.DataFrame):
        return features["prediction"].to_numpy()


class StubChampion:
    """Stands in for registry.VerifiedVersion: the champion's card, and its bundle only when loaded."""

    def __init__(self, task: str = "classification"):
        classes = ["no", "yes"] if task == "classification" else None
        self.card = model_bundle.ModelCard(target="y", task=task, features=[], classes=classes)
        self.loads = 0

    def load_bundle(self, directory):
        self.loads += 1
        return Predicting()


def hiring_batch(rows_a: int, rows_b: int, rate_a: float, rate_b: float, seed: int = 0) -> pd.DataFrame:
    """A labelled batch: half of each group's labels are "yes"; the champion says "yes" to ``rate_a`` of group A
    and ``rate_b`` of group B (exactly, so the gap is known)."""
    rng = np.random.default_rng(seed)
    parts = []
    for group, rows, rate in (("A", rows_a, rate_a), ("B", rows_b, rate_b)):
        said = np.array(["yes"] * round(rows * rate) + ["no"] * (rows - round(rows * rate)))
        parts.append(
            pd.DataFrame({"group": group, "y": rng.permutation(["yes", "no"] * (rows // 2)), "prediction": said})
        )
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed, ignore_index=True)


def gap_of(result, metric: str, column: str = "group"):
    [found] = [gap for item in result.columns if item.column == column for gap in item.gaps if gap.metric == metric]
    return found


def test_a_champion_that_selects_one_group_far_less_alerts_naming_it():
    batch = hiring_batch(400, 300, rate_a=0.6, rate_b=0.3)

    result = assess_batch(StubChampion(), batch, ["group"], DriftPolicy())

    assert result.labelled and result.labelled_rows == 700 and result.alert
    difference = gap_of(result, "demographic_parity_difference")
    assert difference.value == pytest.approx(
        demographic_parity_difference(
            batch["y"] == "yes", batch["prediction"] == "yes", sensitive_features=batch["group"]
        )
    )
    assert difference.value == pytest.approx(0.3)
    assert difference.worst_group == "B" and difference.beyond_limit and difference.low > 0.1
    ratio = gap_of(result, "demographic_parity_ratio")
    assert ratio.value == pytest.approx(
        demographic_parity_ratio(batch["y"] == "yes", batch["prediction"] == "yes", sensitive_features=batch["group"])
    )
    assert ratio.beyond_limit and ratio.high < 0.8
    metrics = fairness_metrics(result)
    assert metrics["fairness_alert"] == 1 and metrics["demographic_parity_difference.group"] == difference.value
    text = render_fairness(result)
    assert (
        "**Alert**" in text and "| demographic_parity_difference | 0.3 | [" in text and "| 0.1 | B | **yes** |" in text
    )


def test_a_champion_that_treats_the_groups_alike_does_not_alert():
    result = assess_batch(StubChampion(), hiring_batch(400, 300, 0.5, 0.48), ["group"], DriftPolicy())

    assert not result.alert
    assert fairness_metrics(result)["fairness_alert"] == 0
    assert "No gap beyond its limit." in render_fairness(result)


def test_a_gap_beyond_its_limit_within_noise_does_not_alert():
    # 40 rows a group: a gap of 0.15 > 0.1 that a few rows make.
    result = assess_batch(StubChampion(), hiring_batch(40, 40, 0.5, 0.35), ["group"], DriftPolicy())

    difference = gap_of(result, "demographic_parity_difference")
    assert difference.value == pytest.approx(0.15) and difference.low < 0.1
    assert not difference.beyond_limit


def test_groups_under_min_group_rows_are_not_judged():
    batch = hiring_batch(400, 20, 0.5, 0.0)

    small = assess_batch(StubChampion(), batch, ["group"], DriftPolicy())
    judged = assess_batch(StubChampion(), batch, ["group"], DriftPolicy(min_group_rows=10))

    assert [(group.value, group.judged) for group in small.columns[0].assessed.groups] == [("A", True), ("B", False)]
    assert not small.alert and "Fewer than two judged groups: no gap." in render_fairness(small)
    assert "B (20, not judged)" in render_fairness(small)
    assert judged.alert


def test_a_batch_without_labels_is_reported_as_such_and_loads_no_model():
    champion = StubChampion()
    batch = hiring_batch(400, 300, 0.6, 0.3)

    for unlabelled in (batch.drop(columns=["y"]), batch.assign(y=None)):
        result = assess_batch(champion, unlabelled, ["group"], DriftPolicy())

        assert not result.labelled and not result.alert
        assert f"The batch has no `y` values: {NO_LABELS}." in render_fairness(result)
        assert fairness_metrics(result) == {"labelled_rows": 0, "fairness_alert": 0}
    assert champion.loads == 0


def test_only_the_labelled_rows_of_a_batch_are_assessed():
    batch = hiring_batch(400, 300, 0.6, 0.3)
    batch.loc[batch.index[:100], "y"] = None

    result = assess_batch(StubChampion(), batch, ["group"], DriftPolicy())

    assert (result.labelled_rows, result.batch_rows) == (600, 700)
    assert "600 labelled rows of 700" in render_fairness(result)


def test_without_sensitive_columns_nothing_is_assessed_or_reported():
    champion = StubChampion()

    result = assess_batch(champion, hiring_batch(400, 300, 0.6, 0.3), [], DriftPolicy())

    assert (render_fairness(result), fairness_metrics(result), result.alert, champion.loads) == ("", {}, False, 0)


def test_a_regressor_serving_one_group_worse_alerts_on_the_relative_error_gap():
    rng = np.random.default_rng(3)
    groups = np.repeat(["A", "B"], [400, 300])
    y = rng.normal(100, 20, 700)
    batch = pd.DataFrame(
        {"group": groups, "y": y, "prediction": y + rng.normal(0, 1, 700) * np.where(groups == "B", 12, 4)}
    )

    result = assess_batch(StubChampion("regression"), batch, ["group"], DriftPolicy())

    gap = gap_of(result, "mae_relative_gap")
    frame = MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=batch["prediction"], sensitive_features=groups)
    assert gap.value == pytest.approx(frame.difference() / frame.overall)
    assert gap.worst_group == "B" and gap.beyond_limit and result.alert


def test_null_turns_a_gaps_alert_off():
    off = dict.fromkeys(("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"))
    policy = DriftPolicy.from_mapping({"max_fairness_gap": off})

    result = assess_batch(StubChampion(), hiring_batch(400, 300, 0.6, 0.3), ["group"], policy)

    assert not result.alert
    assert "| off |" in render_fairness(result)


def test_an_unknown_sensitive_column_is_named():
    with pytest.raises(ValueError, match=r"parameter sensitive_columns: unknown column\(s\) \['sex'\]"):
        assess_batch(StubChampion(), hiring_batch(40, 40, 0.5, 0.5), ["sex"], DriftPolicy())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_fairness_gap": {"parity": 0.1}}, r"names unknown gap metric\(s\) \['parity'\]"),
        ({"max_fairness_gap": {"demographic_parity_ratio": -1}}, r"numbers >= 0 or null .*\['demographic_parity_ra"),
        (
            {"max_fairness_gap": {"demographic_parity_ratio": float("nan")}},
            r"drift_policy\['max_fairness_gap'\]\['demographic_parity_ratio'\] must be in \[0, 1\] or null",
        ),
        *(
            (
                {"max_fairness_gap": {"demographic_parity_ratio": limit}},
                r"drift_policy\['max_fairness_gap'\]\['demographic_parity_ratio'\] must be in \[0, 1\] or null",
            )
            for limit in (2, 1.5)
        ),
        ({"min_group_rows": 0}, r"drift_policy\['min_group_rows'\] must be at least 1"),
    ],
)
def test_bad_fairness_policy_values_are_named(values, message):
    with pytest.raises(DriftError, match=message):
        DriftPolicy.from_mapping(values)


def test_a_ratio_limit_of_1_is_kept_and_a_ratio_null_turns_it_off():
    for limit in (1, 0.5, None):
        policy = DriftPolicy.from_mapping({"max_fairness_gap": {"demographic_parity_ratio": limit}})
        assert policy.fairness_limits("classification")["demographic_parity_ratio"] == limit


def test_limits_are_the_defaults_and_a_gap_of_the_other_task_is_refused():
    assert DriftPolicy().fairness_limits("classification") == {
        "demographic_parity_difference": 0.1,
        "demographic_parity_ratio": 0.8,
        "equalized_odds_difference": 0.1,
    }
    assert set(DEFAULT_FAIRNESS_LIMITS) == {"mae_relative_gap", "rmse_relative_gap"} | set(
        DriftPolicy().fairness_limits("classification")
    )
    with pytest.raises(DriftError, match=r"names gap metric\(s\) \['mae_relative_gap'\] not computed for class"):
        DriftPolicy.from_mapping({"max_fairness_gap": {"mae_relative_gap": 0.3}}).fairness_limits("classification")
