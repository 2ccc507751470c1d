"""gate_model: every decision of the champion/challenger gate with its reason, the paired bootstrap behind it,
and the champion as found in a real registry (absent, unloadable, incompatible, scored)."""

from __future__ import annotations

import dataclasses
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score

import model_bundle
from components._common import registry
from components._common.scoring import score, score_bundle
from components.gate_model.logic import (
    Champion,
    GatePolicy,
    Scored,
    check_thresholds,
    constant_baseline,
    decide,
    incompatibility,
    load_champion,
    measure,
    metric_on_resamples,
    render_reasons,
    slices_of,
)
from components.prepare_data.logic import prepare
from components.register_model.logic import register
from components.train_model.logic import train
from model_bundle import SCHEMA_FILE

REGRESSION_BASELINE = {"r2": -0.01, "rmse": 90.0, "mae": 70.0, "mape": 0.5}
CLASSIFICATION_BASELINE = {"accuracy": 0.3, "balanced_accuracy": 0.33, "f1_macro": 0.15}


def card_of(**fields) -> model_bundle.ModelCard:
    """A model card with the given fields (target ``y``, no features: constant_baseline reads neither)."""
    return model_bundle.ModelCard(target="y", features=[], **fields)


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


def training_mean(value: float = 100.0):
    """The constant baseline of a regression model card (train_model records the training target's mean)."""
    return constant_baseline(card_of(task="regression", baseline_prediction=value), [])


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
    assert decision.rule.startswith(
        "Comparison with champion v3 (r2 on the same 400 test rows): approved, significantly"
    )
    assert decision.baseline_interval is None  # beside a champion, evaluate_model's baseline scores are the check


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


def test_cold_start_is_approved_on_its_gain_over_the_constant_baseline_whatever_the_test_set_size():
    y = truth(rows=60)  # fewer than min_test_rows=100: that bound is for champion comparisons
    predictions = noisy(y, 5, seed=1)

    decision = gate(y, predictions, baseline=training_mean(100.0))

    assert decision.approved, decision.reasons
    assert decision.interval is None
    interval = decision.baseline_interval
    assert interval.gain == pytest.approx(r2_score(y, predictions) - r2_score(y, np.full(60, 100.0)))
    assert 0 < interval.low <= interval.gain <= interval.high
    assert decision.rule == (
        f"Cold start (no champion registered): approved because it beats the constant baseline by "
        f"{interval.gain:+.4g} r2 (95% CI [{interval.low:+.4g}, {interval.high:+.4g}])"
    )
    assert not any("min_test_rows" in reason for reason in decision.reasons)
    assert decision.reasons == [
        f"passed baseline: r2 {r2_score(y, predictions):.4g} vs {r2_score(y, np.full(60, 100.0)):.4g} predicting "
        f"the training mean 100 for every row: {decision.rule.split('because ')[1]}",
        "passed champion: none registered yet (cold start): the thresholds and the gain over the constant baseline "
        "decide, whatever the test-set size",
    ]
    report = render_reasons(decision)
    assert report.startswith(f"# Challenger approved\n\n**Decided by:** {decision.rule}.\n")
    assert "## Challenger vs constant baseline" in report
    assert "The baseline predicts the training mean 100 for every row. Paired bootstrap over 1000 resamples" in report


def test_cold_start_within_noise_of_the_constant_baseline_is_not_approved():
    y = truth(rows=60)
    guesses = np.random.default_rng(7).normal(100.0, 3.0, 60)  # made without looking at the rows

    decision = gate(y, guesses, baseline=training_mean(100.0))

    assert not decision.approved
    assert decision.baseline_interval.low <= 0
    assert decision.rule.startswith("Cold start (no champion registered): not approved: it")
    assert "constant baseline" in decision.rule
    assert failed(decision)[0].startswith("FAILED baseline: r2 ")
    assert render_reasons(decision).startswith("# Challenger rejected\n\n**Decided by:** Cold start")


def test_cold_start_that_beats_the_baseline_but_fails_a_threshold_says_so():
    y = truth(rows=60)

    decision = gate(y, noisy(y, 5, seed=1), thresholds={"r2": 0.99}, baseline=training_mean())

    assert not decision.approved
    assert decision.rule == "Cold start (no champion registered): not approved: threshold(s) r2 failed"


def test_random_guesses_beat_a_constants_macro_f1_but_never_pass_the_cold_start():
    # Guesses spread over the classes score a higher macro F1 than one class predicted everywhere; balanced
    # accuracy gives both 1 / classes on average, so only a model that learned something beats the baseline.
    rng = np.random.default_rng(3)
    y = rng.choice(["a", "b", "c"], 300, p=[0.5, 0.3, 0.2])
    guesses = rng.choice(["a", "b", "c"], 300)
    assert f1_score(y, guesses, average="macro") > f1_score(y, np.full(300, "a"), average="macro") + 0.1
    baseline = constant_baseline(card_of(task="classification", classes=["a", "b", "c"], baseline_prediction="a"), y)

    decision = decide(
        "classification", pd.Series(y), scored(y, guesses, "classification"), {}, Champion(), baseline=baseline
    )

    assert not decision.approved
    assert decision.baseline_metric == "balanced_accuracy"
    assert decision.baseline_interval.gain == pytest.approx(balanced_accuracy_score(y, guesses) - 1 / 3)
    assert "predicting the most frequent training class 'a' for every row" in failed(decision)[0]


def learnable_or_noise(task: str, learnable: bool, rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows whose target follows from the features, or is drawn independently of them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x1": rng.normal(size=rows), "x2": rng.normal(size=rows), "city": rng.choice(list("pqr"), rows)}
    )
    signal = frame["x1"] + 0.5 * frame["x2"] if learnable else pd.Series(rng.normal(size=rows))
    if task == "regression":
        frame["y"] = 50.0 + 10.0 * signal + rng.normal(0.0, 1.0, rows)
    else:
        frame["y"] = np.where(signal < -0.5, "low", np.where(signal > 0.7, "high", "mid"))
    return frame


def cold_start_of(tmp_path, frame: pd.DataFrame, task: str):
    """The gate's cold-start decision for a model trained on ``frame``, as the component takes it: the bundle's
    card carries the training target's constant, and the model is measured on the held-out rows."""
    prepared = prepare(frame, target="y", task=task, seed=0)
    pipeline, card = train(prepared.train, target="y", task=task, seed=0)
    model_bundle.save(tmp_path / "model", pipeline, card)
    bundle = model_bundle.load(tmp_path / "model")
    test = prepared.test
    decision = decide(
        task,
        test["y"],
        measure(bundle, test),
        {},
        Champion(),
        baseline=constant_baseline(bundle.card, test["y"]),
    )
    return decision, test


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_cold_start_on_a_small_learnable_data_set_is_approved(tmp_path, task):
    decision, test = cold_start_of(tmp_path, learnable_or_noise(task, learnable=True), task)

    assert len(test) < GatePolicy().min_test_rows
    assert decision.approved, decision.reasons
    assert decision.rule.startswith("Cold start (no champion registered): approved because it beats the constant")
    assert (
        f"predicting {'the training mean' if task == 'regression' else 'the most frequent training class'}"
        in (decision.reasons[0])
    )


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_cold_start_on_pure_noise_is_not_approved(tmp_path, task):
    decision, test = cold_start_of(tmp_path, learnable_or_noise(task, learnable=False), task)

    assert len(test) < GatePolicy().min_test_rows
    assert not decision.approved
    assert decision.baseline_interval.low <= 0
    assert decision.rule.startswith("Cold start (no champion registered): not approved: it")
    assert failed(decision)[0].startswith(f"FAILED baseline: {decision.baseline_metric} ")


def test_constant_baseline_is_read_from_the_model_card():
    regression = constant_baseline(card_of(task="regression", baseline_prediction=250_000), [1.0, 2.0])
    classification = constant_baseline(
        card_of(task="classification", classes=["A", "B"], baseline_prediction="B"), ["A", "A"]
    )

    assert (regression.value, regression.description, regression.note) == (250_000.0, "the training mean", "")
    assert regression.predictions(3).tolist() == [250_000.0] * 3
    assert (classification.value, classification.description) == ("B", "the most frequent training class")
    assert classification.predictions(2).tolist() == ["B", "B"]


def test_card_without_baseline_prediction_falls_back_to_the_test_rows_and_says_so():
    regression = constant_baseline(card_of(task="regression"), [1.0, 2.0, 6.0])
    classification = constant_baseline(card_of(task="classification", classes=["x", "y"]), ["y", "x", "y"])

    assert (regression.value, regression.description) == (3.0, "the test rows' mean")
    assert (classification.value, classification.description) == ("y", "the test rows' most frequent class")
    y = truth(rows=60)
    decision = gate(y, noisy(y, 5, seed=1), baseline=constant_baseline(card_of(task="regression"), y))
    assert decision.approved, decision.reasons
    assert "the model card has no baseline_prediction" in decision.reasons[0]
    assert "the test rows' constant stands in for the training rows'" in render_reasons(decision)


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"task": "regression", "baseline_prediction": "high"}, r"must be a finite number for regression, got 'high'"),
        ({"task": "regression", "baseline_prediction": float("nan")}, r"must be a finite number for regression"),
        (
            {"task": "classification", "classes": ["A", "B"], "baseline_prediction": "Z"},
            r"must be one of the model's classes \['A', 'B'\], got 'Z'",
        ),
    ],
)
def test_bad_baseline_prediction_in_the_card_is_named(card, message):
    with pytest.raises(ValueError, match=rf"model card key 'baseline_prediction' {message}"):
        constant_baseline(card_of(**card), [1.0])


def test_cold_start_policy_reject_leaves_the_first_promotion_to_a_person():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), policy=GatePolicy(cold_start="reject"))

    assert not decision.approved
    assert failed(decision) == [
        "FAILED champion: none registered yet (cold start) and policy cold_start=reject: a person promotes"
    ]
    assert decision.rule.startswith(
        "Cold start (no champion registered), policy cold_start=reject: not approved, a person promotes (it beats"
    )


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


def test_too_small_a_test_set_never_promotes_over_a_champion():
    y = truth(rows=60)
    champion = champion_of(y, noisy(y, 12, seed=2))
    decision = gate(y, noisy(y, 1, seed=1), champion)

    assert not decision.approved
    assert failed(decision) == ["FAILED test set: 60 rows, fewer than min_test_rows=100: too few to tell models apart"]
    assert decision.rule.endswith("not approved, 1 check(s) failed (listed first below)")
    assert gate(y, noisy(y, 1, seed=1), champion, policy=GatePolicy(min_test_rows=50)).approved


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
    decision = gate(y, np.full(len(y), y.mean()) + 5, baseline=training_mean(y.mean()))

    assert not decision.approved
    assert "it is significantly worse than the constant baseline" in failed(decision)[0]


def test_beside_a_champion_the_baseline_check_takes_evaluate_models_scores():
    y = truth()
    bad = np.full(len(y), y.mean()) + 5
    decision = gate(y, bad, champion_of(y, bad + 5))

    assert not decision.approved
    assert failed(decision)[0] == (
        f"FAILED baseline: r2 {r2_score(y, bad):.4g} vs constant prediction -0.01 "
        "(no better than predicting a constant)"
    )


def test_threshold_on_mape_fails_saying_why_when_the_test_target_has_zeros():
    y = truth(rows=200)
    y[:3] = 0.0
    predictions = noisy(y, 5, seed=1)

    decision = gate(y, predictions, thresholds={"mape": 0.1, "r2": 0.5}, baseline=training_mean())

    assert not decision.approved
    assert failed(decision) == [
        "FAILED threshold: mape cannot be checked: the test target has 3 of 200 values at or near zero "
        f"(|value| <= {0.01 * np.median(np.abs(y)):.4g}, 1% of the median |value|), where a percentage error is "
        "undefined"
    ]
    assert decision.rule == "Cold start (no champion registered): not approved: threshold(s) mape failed"


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
def test_resampled_balanced_accuracy_equals_scikit_learn_on_the_resampled_rows(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(["a", "b", "c", "rare"], 40, p=[0.4, 0.3, 0.25, 0.05])
    predictions = np.where(rng.random(40) < 0.7, y, rng.choice(["a", "b", "c", "rare", "never"], 40))
    draws = [rng.integers(0, 40, 40) for _ in range(8)]
    counts = np.stack([np.bincount(d, minlength=40) for d in draws])

    resampled = metric_on_resamples("balanced_accuracy", y, predictions, counts)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of a label only ever predicted, then ignores it
        expected = [balanced_accuracy_score(y[d], predictions[d]) for d in draws]
    assert resampled == pytest.approx(expected)


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


def test_champion_of_an_older_model_format_is_incompatible_not_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    make_champion(bundle)
    [card_file] = (mlflow_state / "mlartifacts").rglob(model_bundle.CARD_FILE)
    card_file.write_text(card_file.read_text().replace('"format_version": 2', '"format_version": 1'))

    champion = load_champion("", "houses", bundle, test)

    # Intact files of an older release: the incompatible_champion policy decides, no person needs to step in.
    assert champion.problem is None
    assert "has format_version 1, expected 2" in champion.incompatibility
    decision = decide("regression", test["price"], Scored(np.zeros(1), {"r2": 0.9}), REGRESSION_BASELINE, champion)
    assert not any("cannot be loaded" in reason for reason in decision.reasons)


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
