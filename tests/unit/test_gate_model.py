"""gate_model: every decision of the champion/challenger gate with its reason, the paired bootstrap behind it,
and the champion as found in a real registry (absent, unloadable, incompatible, scored)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, r2_score

from components._common import registry
from components._common.scoring import score, score_bundle
from components.gate_model.logic import (
    Champion,
    GatePolicy,
    Scored,
    check_thresholds,
    decide,
    incompatibility,
    load_champion,
    metric_on_resamples,
    render_reasons,
    slices_of,
)
from components.register_model.logic import register
from model_bundle import SCHEMA_FILE

REGRESSION_BASELINE = {"r2": -0.01, "rmse": 90.0, "mae": 70.0, "mape": 0.5}
CLASSIFICATION_BASELINE = {"accuracy": 0.3, "balanced_accuracy": 0.33, "f1_macro": 0.15}


def truth(rows: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 20.0, rows)


def noisy(y: np.ndarray, noise: float, seed: int) -> np.ndarray:
    return y + np.random.default_rng(seed).normal(0.0, noise, len(y))


def scored(y: np.ndarray, predictions: np.ndarray, task: str = "regression") -> Scored:
    return Scored(predictions=np.asarray(predictions), scores=score(task, y, predictions))


def champion_of(y: np.ndarray, predictions: np.ndarray, task: str = "regression", version: str = "3") -> Champion:
    return Champion(version=version, scored=scored(y, predictions, task))


def gate(y, challenger_predictions, champion=None, **options):
    return decide(
        "regression",
        pd.Series(y),
        scored(y, challenger_predictions),
        REGRESSION_BASELINE,
        champion if champion is not None else Champion(),
        **options,
    )


def failed(decision) -> list[str]:
    return [reason for reason in decision.reasons if reason.startswith("FAILED")]


# --- against the champion ----------------------------------------------------------------------------------------


def test_clearly_better_challenger_is_approved_with_its_interval():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), champion_of(y, noisy(y, 12, seed=2)))

    assert decision.approved, decision.reasons
    interval = decision.interval
    assert 0 < interval.low <= interval.gain <= interval.high
    assert interval.confidence == 0.95 and interval.samples == 1000
    reason = next(r for r in decision.reasons if "champion v3" in r)
    assert reason.startswith("passed champion v3: r2 ")
    assert reason.endswith("significantly better")
    assert "95% CI [+" in reason


def test_clearly_worse_challenger_is_rejected():
    y = truth()
    decision = gate(y, noisy(y, 12, seed=1), champion_of(y, noisy(y, 5, seed=2)))

    assert not decision.approved
    assert decision.interval.high < 0
    assert failed(decision) == [next(r for r in decision.reasons if "champion v3" in r)]
    assert failed(decision)[0].endswith("significantly worse")


def test_equal_within_noise_is_a_tie_and_keeps_the_champion():
    y = truth()
    champion = noisy(y, 10, seed=2)
    challenger = champion.copy()
    challenger[0] = y[0]  # better on one row out of 400: a higher score, but no evidence

    decision = gate(y, challenger, champion_of(y, champion))

    assert decision.interval.gain > 0
    assert decision.interval.low <= 0
    assert not decision.approved
    assert failed(decision)[0].endswith("no significant difference (a tie; policy ties=keep_champion)")


def test_tie_policy_can_promote_a_challenger_that_is_not_worse():
    y = truth()
    champion = noisy(y, 10, seed=2)
    challenger = champion.copy()
    challenger[0] = y[0]

    decision = gate(y, challenger, champion_of(y, champion), policy=GatePolicy(ties="promote_challenger"))

    assert decision.approved, decision.reasons
    assert any(r.endswith("(a tie; policy ties=promote_challenger)") for r in decision.reasons)


def test_significant_gain_below_min_improvement_is_rejected():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), champion_of(y, noisy(y, 6, seed=2)), min_improvement=0.05)

    assert decision.interval.low > 0
    assert not decision.approved
    assert "required +0.05): gain below the required improvement" in failed(decision)[0]


def test_the_same_data_always_gets_the_same_decision():
    y = truth()
    first = gate(y, noisy(y, 9, seed=1), champion_of(y, noisy(y, 10, seed=2)))
    second = gate(y, noisy(y, 9, seed=1), champion_of(y, noisy(y, 10, seed=2)))

    assert first.interval == second.interval
    assert first.reasons == second.reasons


def test_classification_compares_f1_macro_on_paired_resamples():
    rng = np.random.default_rng(4)
    y = rng.choice(["a", "b", "c"], 600)
    champion = np.where(rng.random(600) < 0.6, y, rng.choice(["a", "b", "c"], 600))
    challenger = np.where(rng.random(600) < 0.9, y, rng.choice(["a", "b", "c"], 600))

    decision = decide(
        "classification",
        pd.Series(y),
        scored(y, challenger, "classification"),
        CLASSIFICATION_BASELINE,
        champion_of(y, champion, "classification"),
    )

    assert decision.primary_metric == "f1_macro"
    assert decision.approved, decision.reasons
    assert decision.interval.gain == pytest.approx(
        f1_score(y, challenger, average="macro") - f1_score(y, champion, average="macro")
    )


# --- the slice guard ---------------------------------------------------------------------------------------------


def test_better_on_average_but_worse_on_a_slice_is_rejected():
    y = truth(rows=400)
    city = pd.Series(["Berlin"] * 300 + ["Hamburg"] * 100, name="city")
    champion = noisy(y, 10, seed=2)
    challenger = noisy(y, 3, seed=1)
    challenger[300:] = y[300:] + np.random.default_rng(5).normal(0, 14, 100)  # Hamburg got worse

    decision = gate(y, challenger, champion_of(y, champion), slices=city)

    assert decision.interval.low > 0  # better overall, beyond noise
    assert not decision.approved
    assert len(failed(decision)) == 1
    assert failed(decision)[0].startswith("FAILED slice city=Hamburg (100 rows): r2 ")
    assert "worse by more than max_slice_regression=0.02" in failed(decision)[0]
    berlin, hamburg = decision.slices
    assert (berlin.value, berlin.rows, hamburg.value, hamburg.rows) == ("Berlin", 300, "Hamburg", 100)
    assert hamburg.challenger == pytest.approx(r2_score(y[300:], challenger[300:]))
    assert hamburg.champion == pytest.approx(r2_score(y[300:], champion[300:]))


def test_small_slices_are_listed_but_not_judged():
    y = truth(rows=400)
    city = pd.Series(["Berlin"] * 390 + ["Bonn"] * 9 + [None], name="city")
    champion = noisy(y, 10, seed=2)
    challenger = noisy(y, 3, seed=1)
    challenger[390:] = y[390:] + 25  # bad on Bonn and on the missing city, but 10 rows say little

    decision = gate(y, challenger, champion_of(y, champion), slices=city)

    assert decision.approved, decision.reasons
    assert [(s.value, s.rows, s.judged) for s in decision.slices] == [
        ("Berlin", 390, True),
        ("Bonn", 9, False),
        ("(missing)", 1, False),
    ]
    assert "| Bonn | 9 | too few rows to judge | |" in render_reasons(decision)


def test_slice_column_missing_from_the_test_set_is_named():
    with pytest.raises(ValueError, match=r"slice_column: column 'town' is not in the test set \['city', 'price'\]"):
        slices_of(pd.DataFrame({"city": ["a"], "price": [1.0]}), "town")


# --- champions without a fair comparison -------------------------------------------------------------------------


def test_cold_start_is_approved_on_the_absolute_checks():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1))

    assert decision.approved
    assert decision.interval is None
    assert "passed champion: none registered yet (cold start): the checks above decide" in decision.reasons


def test_cold_start_policy_reject_leaves_the_first_promotion_to_a_person():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), policy=GatePolicy(cold_start="reject"))

    assert not decision.approved
    assert failed(decision) == [
        "FAILED champion: none registered yet (cold start) and policy cold_start=reject: a person promotes"
    ]


def test_champion_whose_files_cannot_be_loaded_blocks_promotion_whatever_the_policy():
    y = truth()
    champion = Champion(version="4", problem="model.joblib is missing")

    for policy in (GatePolicy(), GatePolicy(incompatible_champion="approve")):
        decision = gate(y, noisy(y, 1, seed=1), champion, policy=policy)

        assert not decision.approved
        assert failed(decision) == [
            "FAILED champion v4: its files cannot be loaded (model.joblib is missing); restore them or move the "
            "alias `champion` to a version that loads"
        ]


def test_incompatible_champion_is_rejected_by_default_and_approved_on_request():
    y = truth()
    champion = Champion(version="5", incompatibility="it needs column(s) ['rooms'] that this data does not have")

    rejected = gate(y, noisy(y, 5, seed=1), champion)
    approved = gate(y, noisy(y, 5, seed=1), champion, policy=GatePolicy(incompatible_champion="approve"))

    assert not rejected.approved
    assert failed(rejected) == [
        "FAILED champion v5: not comparable on this data (it needs column(s) ['rooms'] that this data does not "
        "have); policy incompatible_champion=reject: a person decides"
    ]
    assert approved.approved, approved.reasons


# --- absolute checks ---------------------------------------------------------------------------------------------


def test_too_small_a_test_set_never_promotes():
    y = truth(rows=60)
    decision = gate(y, noisy(y, 1, seed=1))

    assert not decision.approved
    assert failed(decision) == ["FAILED test set: 60 rows, fewer than min_test_rows=100: too few to tell models apart"]
    assert gate(y, noisy(y, 1, seed=1), policy=GatePolicy(min_test_rows=50)).approved


@pytest.mark.parametrize(("bound", "approved"), [(0.6, True), (0.99, False)])
def test_threshold_on_higher_is_better_metric_is_a_floor(bound, approved):
    y = truth()
    assert gate(y, noisy(y, 5, seed=1), thresholds={"r2": bound}).approved is approved


@pytest.mark.parametrize(("bound", "approved"), [(10.0, True), (1.0, False)])
def test_threshold_on_lower_is_better_metric_is_a_ceiling(bound, approved):
    y = truth()
    assert gate(y, noisy(y, 5, seed=1), thresholds={"rmse": bound}).approved is approved


def test_failed_threshold_reason_shows_value_and_bound():
    y = truth()
    predictions = noisy(y, 5, seed=1)
    r2 = r2_score(y, predictions)

    decision = gate(y, predictions, thresholds={"r2": 0.99})

    assert failed(decision) == [f"FAILED threshold: r2 {r2:.4g} not >= 0.99"]


def test_unknown_threshold_metric_is_named():
    with pytest.raises(ValueError, match=r"parameter thresholds names metric\(s\) \['auc'\] not computed"):
        check_thresholds("regression", {"auc": 0.9})


def test_threshold_that_is_not_a_number_is_named():
    with pytest.raises(ValueError, match=r"thresholds must map metrics to numbers; \['r2'\] are not numbers"):
        check_thresholds("regression", {"r2": "0.6"})


def test_not_better_than_the_baseline_is_rejected():
    y = truth()
    decision = gate(y, np.full(len(y), y.mean()) + 5)

    assert not decision.approved
    assert "no better than predicting a constant" in failed(decision)[0]


def test_report_lists_failures_first_with_the_interval():
    y = truth()
    decision = gate(y, noisy(y, 12, seed=1), champion_of(y, noisy(y, 5, seed=2)))

    report = render_reasons(decision)

    assert report.startswith("# Challenger rejected\n")
    assert f"on {len(y)} test rows" in report
    checks = [line for line in report.splitlines() if line.startswith("- ")]
    assert checks[0].startswith("- FAILED champion v3")
    assert all(line.startswith("- passed") for line in checks[1:])
    assert "## Challenger vs champion" in report
    assert "Paired bootstrap over 1000 resamples" in report


# --- the policy parameter ----------------------------------------------------------------------------------------


def test_policy_from_a_kfp_dict_turns_whole_floats_into_integers():
    policy = GatePolicy.from_mapping({"bootstrap_samples": 200.0, "confidence": 0.9, "ties": "promote_challenger"})

    assert policy == GatePolicy(bootstrap_samples=200, confidence=0.9, ties="promote_challenger")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"confidense": 0.9}, r"unknown key\(s\) \['confidense'\]"),
        ({"ties": "coin_flip"}, r"gate_policy\['ties'\] must be one of \('keep_champion', 'promote_challenger'\)"),
        ({"bootstrap_samples": 2.5}, r"gate_policy\['bootstrap_samples'\] must be a int, got 2.5"),
        ({"confidence": 1.0}, r"gate_policy\['confidence'\] must be in \[0.5, 1\)"),
        ({"min_test_rows": 0}, r"gate_policy\['min_test_rows'\] must be at least 1"),
        ({"cold_start": True}, r"gate_policy\['cold_start'\] must be a str"),
    ],
)
def test_bad_policy_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        GatePolicy.from_mapping(values)


# --- the bootstrap's arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_resampled_r2_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y, predictions = truth(50, seed), noisy(truth(50, seed), 8, seed)
    draws = [rng.integers(0, 50, 50) for _ in range(5)]
    counts = np.stack([np.bincount(d, minlength=50) for d in draws])

    resampled = metric_on_resamples("r2", y, predictions, counts)

    assert resampled == pytest.approx([r2_score(y[d], predictions[d]) for d in draws])


@pytest.mark.parametrize("seed", range(3))
def test_resampled_f1_macro_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c", "rare"], 40, p=[0.4, 0.3, 0.25, 0.05])
    predictions = np.where(rng.random(40) < 0.7, y, rng.choice(["a", "b", "c", "rare"], 40))
    draws = [rng.integers(0, 40, 40) for _ in range(8)]
    counts = np.stack([np.bincount(d, minlength=40) for d in draws])

    resampled = metric_on_resamples("f1_macro", y, predictions, counts)

    assert resampled == pytest.approx([f1_score(y[d], predictions[d], average="macro") for d in draws])


def test_resampled_r2_of_a_constant_truth_follows_scikit_learn():
    y = np.full(10, 3.0)
    counts = np.ones((1, 10))

    assert metric_on_resamples("r2", y, y, counts)[0] == r2_score(y, y) == 1.0
    assert metric_on_resamples("r2", y, y + 1, counts)[0] == r2_score(y, y + 1) == 0.0


# --- the champion in a real registry ------------------------------------------------------------------------------


def make_champion(bundle, model_name: str = "houses") -> str:
    version = register("", model_name, bundle.directory, {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias(model_name, registry.CHAMPION, version)
    return version


def test_no_registered_model_means_cold_start(mlflow_state, regression_bundle):
    bundle, test = regression_bundle

    assert load_champion("", "houses", bundle, test) == Champion()


def test_registered_model_without_champion_alias_means_cold_start(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    register("", "houses", bundle.directory, {"r2": 0.5}, True, "approved")  # alias challenger only

    assert load_champion("", "houses", bundle, test) == Champion()


def test_champion_is_scored_on_this_test_set(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = make_champion(bundle)

    champion = load_champion("", "houses", bundle, test)

    assert champion.version == version
    assert champion.problem is None and champion.incompatibility is None
    assert champion.scored.scores == pytest.approx(score_bundle(bundle, test, "price"))
    assert champion.scored.predictions == pytest.approx(bundle.predict(test.drop(columns=["price"])))


def test_champion_artifact_missing_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    make_champion(bundle)
    shutil.rmtree(mlflow_state / "mlartifacts")

    champion = load_champion("", "houses", bundle, test)

    assert champion.scored is None
    assert champion.problem
    decision = decide("regression", test["price"], Scored(np.zeros(1), {"r2": 0.9}), REGRESSION_BASELINE, champion)
    assert "its files cannot be loaded" in failed(decision)[-1]


def test_champion_whose_files_do_not_match_the_registered_digest_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = make_champion(bundle)
    registry.connect("").set_model_version_tag("houses", version, "model_sha256", "f" * 64)

    champion = load_champion("", "houses", bundle, test)

    assert champion.scored is None
    assert "digest mismatch" in champion.problem


def test_champion_predicting_another_target_is_incompatible(mlflow_state, regression_bundle, classification_bundle):
    price_model, _ = regression_bundle
    label_model, label_test = classification_bundle
    make_champion(price_model)

    champion = load_champion("", "houses", label_model, label_test)

    assert champion.scored is None
    assert champion.incompatibility == "it predicts target 'price', the challenger 'energy_label'"


def test_champion_needing_a_column_this_data_lacks_is_incompatible(regression_bundle):
    bundle, test = regression_bundle

    assert incompatibility(bundle, bundle, test.drop(columns=["rooms"])) == (
        "it needs column(s) ['rooms'] that this data does not have"
    )


def test_champion_whose_column_changed_type_is_incompatible(regression_bundle):
    bundle, test = regression_bundle
    schema = bundle.schema
    columns = [
        {**column, "type": "categorical", "kind": "text"} if column["name"] == "rooms" else column
        for column in schema["columns"]
    ]
    challenger = dataclasses.replace(bundle, documents={SCHEMA_FILE: {**schema, "columns": columns}})

    reason = incompatibility(bundle, challenger, test)

    assert reason.startswith("column 'rooms' was numeric (integer) in the reference schema, now categorical (text)")


def test_compatible_champion_has_no_incompatibility(regression_bundle):
    bundle, test = regression_bundle

    assert incompatibility(bundle, bundle, test) is None
