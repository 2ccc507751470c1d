"""gate_model's decision: every check of the champion/challenger gate (name, passed, detail), the verdict derived
from them, the constant baseline it measures a cold start against, and the Markdown reasons it renders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score

import model_bundle
from components._common.scoring import Scored, score, score_bundle
from components._common.slices import SliceRule
from components.gate_model.baseline import constant_baseline
from components.gate_model.champion import Champion
from components.gate_model.decision import Check, decide
from components.gate_model.policy import GatePolicy
from components.gate_model.report import check_line, render_reasons
from components.prepare_data.logic import prepare
from components.train_model.logic import train

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


def gate(y, challenger_predictions, champion=None, policy=None, **options):
    return decide(
        "regression",
        pd.Series(y),
        scored(y, challenger_predictions),
        REGRESSION_BASELINE,
        champion if champion is not None else Champion(),
        policy,
        **options,
    )


def named(decision, name: str) -> list[Check]:
    """The decision's checks called ``name``, in the order they were made."""
    return [check for check in decision.checks if check.name == name]


def the(decision, name: str) -> Check:
    """The decision's one check called ``name``."""
    [check] = named(decision, name)
    return check


def training_mean(value: float = 100.0):
    """The constant baseline of a regression model card (train_model records the training target's mean)."""
    return constant_baseline(card_of(task="regression", baseline_prediction=value), [])


# --- the verdict is the checks' ----------------------------------------------------------------------------------


def test_a_decision_is_approved_exactly_when_every_check_passed():
    y = truth()
    approved = gate(y, noisy(y, 5, seed=1), champion_of(y, noisy(y, 12, seed=2)))
    rejected = gate(y, noisy(y, 12, seed=1), champion_of(y, noisy(y, 5, seed=2)))

    assert approved.approved and approved.failed == [] and approved.checks
    assert [check.name for check in approved.checks] == ["test set", "baseline", "champion"]
    assert not rejected.approved and [check.name for check in rejected.failed] == ["champion"]


def test_a_check_renders_as_its_verdict_name_subject_and_detail():
    assert check_line(Check("champion", False, "r2 0.8 vs 0.9: significantly worse", "v3")) == (
        "FAILED champion v3: r2 0.8 vs 0.9: significantly worse"
    )
    assert check_line(Check("test set", True, "400 rows")) == "passed test set: 400 rows"


# --- against the champion ----------------------------------------------------------------------------------------


def test_clearly_better_challenger_is_approved_with_its_interval():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), champion_of(y, noisy(y, 12, seed=2)))

    assert decision.approved, decision.checks
    interval = decision.interval
    assert 0 < interval.low <= interval.gain <= interval.high
    assert interval.confidence == 0.95 and interval.samples == 1000
    check = the(decision, "champion")
    assert (check.passed, check.subject) == (True, "v3")
    assert check.detail.startswith("r2 ")
    assert check.detail.endswith("significantly better")
    assert "95% CI [+" in check.detail
    assert check_line(check).startswith("passed champion v3: r2 ")
    assert decision.rule.startswith(
        "Comparison with champion v3 (r2 on the same 400 test rows): approved, significantly"
    )
    assert decision.baseline_interval is None  # beside a champion, evaluate_model's baseline scores are the check


def test_clearly_worse_challenger_is_rejected():
    y = truth()
    decision = gate(y, noisy(y, 12, seed=1), champion_of(y, noisy(y, 5, seed=2)))

    assert not decision.approved
    assert decision.interval.high < 0
    assert decision.failed == [the(decision, "champion")]
    assert decision.failed[0].detail.endswith("significantly worse")


def test_equal_within_noise_is_a_tie_and_keeps_the_champion():
    y = truth()
    champion = noisy(y, 10, seed=2)
    challenger = champion.copy()
    challenger[0] = y[0]  # better on one row out of 400: a higher score, but no evidence

    decision = gate(y, challenger, champion_of(y, champion))

    assert decision.interval.gain > 0
    assert decision.interval.low <= 0
    assert not decision.approved
    assert decision.failed[0].name == "champion"
    assert decision.failed[0].detail.endswith("no significant difference (a tie; policy ties=keep_champion)")


def test_tie_policy_can_promote_a_challenger_that_is_not_worse():
    y = truth()
    champion = noisy(y, 10, seed=2)
    challenger = champion.copy()
    challenger[0] = y[0]

    decision = gate(y, challenger, champion_of(y, champion), GatePolicy(ties="promote_challenger"))

    assert decision.approved, decision.checks
    check = the(decision, "champion")
    assert check.passed and check.detail.endswith("(a tie; policy ties=promote_challenger)")


def test_significant_gain_below_min_improvement_is_rejected():
    y = truth()
    decision = gate(y, noisy(y, 5, seed=1), champion_of(y, noisy(y, 6, seed=2)), GatePolicy(min_improvement=0.05))

    assert decision.interval.low > 0
    assert not decision.approved
    assert decision.failed[0].name == "champion"
    assert "required +0.05): gain below the required improvement" in decision.failed[0].detail


def test_the_same_data_always_gets_the_same_decision():
    y = truth()
    first = gate(y, noisy(y, 9, seed=1), champion_of(y, noisy(y, 10, seed=2)))
    second = gate(y, noisy(y, 9, seed=1), champion_of(y, noisy(y, 10, seed=2)))

    assert first.interval == second.interval
    assert first.checks == second.checks


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
    assert decision.approved, decision.checks
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
    [check] = decision.failed
    assert (check.name, check.subject) == ("slice", "city=Hamburg (100 rows)")
    assert check.detail.startswith("r2 ")
    assert "worse by more than max_slice_regression=0.02" in check.detail
    assert check_line(check).startswith("FAILED slice city=Hamburg (100 rows): r2 ")
    berlin, hamburg = decision.slices
    assert (berlin.value, berlin.rows, hamburg.value, hamburg.rows) == ("Berlin", 300, "Hamburg", 100)
    assert hamburg.challenger == pytest.approx(r2_score(y[300:], challenger[300:]))
    assert hamburg.champion == pytest.approx(r2_score(y[300:], champion[300:]))


def test_small_slices_are_listed_but_not_judged():
    y = truth(rows=400)
    city = pd.Series(["Berlin"] * 390 + ["Bonn"] * 9 + ["(missing)"], name="city")
    champion = noisy(y, 10, seed=2)
    challenger = noisy(y, 3, seed=1)
    challenger[390:] = y[390:] + 25  # bad on Bonn and on the missing city, but 10 rows say little

    decision = gate(y, challenger, champion_of(y, champion), slices=city)

    assert decision.approved, decision.checks
    assert [(s.value, s.rows, s.judged) for s in decision.slices] == [
        ("Berlin", 390, True),
        ("Bonn", 9, False),
        ("(missing)", 1, False),
    ]
    report = render_reasons(decision)
    assert "| Bonn | 9 | too few rows to judge | |" in report
    assert "Slices of fewer than 30 rows (gate_policy['min_slice_rows']) are not judged" in report


def test_the_slice_minimum_is_the_policys():
    y = truth(rows=400)
    city = pd.Series(["Berlin"] * 360 + ["Bonn"] * 40, name="city")
    champion = noisy(y, 10, seed=2)
    challenger = noisy(y, 3, seed=1)
    challenger[360:] = y[360:] + 25  # Bonn much worse: judged at the default 30 rows, not at 50

    judged = gate(y, challenger, champion_of(y, champion), slices=city)
    unjudged = gate(y, challenger, champion_of(y, champion), GatePolicy(min_slice_rows=50), slices=city)

    assert [check.subject for check in judged.failed] == ["city=Bonn (40 rows)"]
    assert unjudged.approved, unjudged.checks
    assert [(s.value, s.judged) for s in unjudged.slices] == [("Berlin", True), ("Bonn", False)]
    assert GatePolicy(min_slice_rows=50).slice_rule == SliceRule(50)
    assert "Slices of fewer than 50 rows" in render_reasons(unjudged)


# --- champions without a fair comparison -------------------------------------------------------------------------


def test_cold_start_is_approved_on_its_gain_over_the_constant_baseline_whatever_the_test_set_size():
    y = truth(rows=60)  # fewer than min_test_rows=100: that bound is for champion comparisons
    predictions = noisy(y, 5, seed=1)

    decision = gate(y, predictions, baseline=training_mean(100.0))

    assert decision.approved, decision.checks
    assert decision.interval is None
    interval = decision.baseline_interval
    assert interval.gain == pytest.approx(r2_score(y, predictions) - r2_score(y, np.full(60, 100.0)))
    assert 0 < interval.low <= interval.gain <= interval.high
    assert decision.rule == (
        f"Cold start (no champion registered): approved because it beats the constant baseline by "
        f"{interval.gain:+.4g} r2 (95% CI [{interval.low:+.4g}, {interval.high:+.4g}])"
    )
    assert named(decision, "test set") == []
    assert not any("min_test_rows" in check.detail for check in decision.checks)
    assert decision.checks == [
        Check(
            "baseline",
            True,
            f"r2 {r2_score(y, predictions):.4g} vs {r2_score(y, np.full(60, 100.0)):.4g} predicting "
            f"the training mean 100 for every row: {decision.rule.split('because ')[1]}",
        ),
        Check(
            "champion",
            True,
            "none registered yet (cold start): the thresholds and the gain over the constant baseline decide, "
            "whatever the test-set size",
        ),
    ]
    report = render_reasons(decision)
    assert report.startswith(f"# Challenger approved\n\n**Decided by:** {decision.rule}.\n")
    assert "\n- passed baseline: r2 " in report
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
    assert decision.failed[0].name == "baseline"
    assert decision.failed[0].detail.startswith("r2 ")
    assert render_reasons(decision).startswith("# Challenger rejected\n\n**Decided by:** Cold start")


def test_cold_start_that_beats_the_baseline_but_fails_a_threshold_says_so():
    y = truth(rows=60)

    decision = gate(y, noisy(y, 5, seed=1), policy=GatePolicy(thresholds={"r2": 0.99}), baseline=training_mean())

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
    assert decision.failed[0].name == "baseline"
    assert "predicting the most frequent training class 'a' for every row" in decision.failed[0].detail


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
        score_bundle(bundle, test),
        {},
        Champion(),
        baseline=constant_baseline(bundle.card, test["y"]),
    )
    return decision, test


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_cold_start_on_a_small_learnable_data_set_is_approved(tmp_path, task):
    decision, test = cold_start_of(tmp_path, learnable_or_noise(task, learnable=True), task)

    assert len(test) < GatePolicy().min_test_rows
    assert decision.approved, decision.checks
    assert decision.rule.startswith("Cold start (no champion registered): approved because it beats the constant")
    assert decision.checks[0].name == "baseline"
    assert (
        f"predicting {'the training mean' if task == 'regression' else 'the most frequent training class'}"
        in decision.checks[0].detail
    )


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_cold_start_on_pure_noise_is_not_approved(tmp_path, task):
    decision, test = cold_start_of(tmp_path, learnable_or_noise(task, learnable=False), task)

    assert len(test) < GatePolicy().min_test_rows
    assert not decision.approved
    assert decision.baseline_interval.low <= 0
    assert decision.rule.startswith("Cold start (no champion registered): not approved: it")
    assert decision.failed[0].name == "baseline"
    assert decision.failed[0].detail.startswith(f"{decision.baseline_metric} ")


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
    assert decision.approved, decision.checks
    assert "the model card has no baseline_prediction" in decision.checks[0].detail
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
    assert decision.failed == [
        Check("champion", False, "none registered yet (cold start) and policy cold_start=reject: a person promotes")
    ]
    assert decision.rule.startswith(
        "Cold start (no champion registered), policy cold_start=reject: not approved, a person promotes (it beats"
    )


def test_champion_whose_files_cannot_be_loaded_blocks_promotion_whatever_the_policy():
    y = truth()
    champion = Champion(version="4", problem="model.joblib is missing")

    for policy in (GatePolicy(), GatePolicy(incompatible_champion="approve")):
        decision = gate(y, noisy(y, 1, seed=1), champion, policy)

        assert not decision.approved
        assert decision.failed == [
            Check(
                "champion",
                False,
                "its files cannot be loaded (model.joblib is missing); restore them or move the alias `champion` to "
                "a version that loads",
                "v4",
            )
        ]
        assert decision.rule == "Champion v4 cannot be loaded: not approved, a person must look"


def test_champion_that_failed_verification_before_its_version_was_read_blocks_promotion():
    y = truth()
    problem = "houses version 7 (the champion) (file:///x): sha256 digest mismatch for model.json"

    decision = gate(y, noisy(y, 1, seed=1), Champion(problem=problem))

    assert not decision.approved
    [check] = decision.failed
    assert (check.name, check.subject) == ("champion", "")
    assert check.detail.startswith(f"its files cannot be loaded ({problem}); restore them")
    assert decision.rule == "Champion cannot be loaded: not approved, a person must look"


def test_incompatible_champion_is_rejected_by_default_and_approved_on_request():
    y = truth()
    champion = Champion(version="5", incompatibility="it needs column(s) ['rooms'] that this data does not have")

    rejected = gate(y, noisy(y, 5, seed=1), champion)
    approved = gate(y, noisy(y, 5, seed=1), champion, GatePolicy(incompatible_champion="approve"))

    assert not rejected.approved
    assert rejected.failed == [
        Check(
            "champion",
            False,
            "not comparable on this data (it needs column(s) ['rooms'] that this data does not have); policy "
            "incompatible_champion=reject: a person decides",
            "v5",
        )
    ]
    assert approved.approved, approved.checks
    assert approved.rule.startswith("Champion v5 not comparable, policy incompatible_champion=approve: approved")


# --- absolute checks ---------------------------------------------------------------------------------------------


def test_too_small_a_test_set_never_promotes_over_a_champion():
    y = truth(rows=60)
    champion = champion_of(y, noisy(y, 12, seed=2))
    decision = gate(y, noisy(y, 1, seed=1), champion)

    assert not decision.approved
    assert decision.failed == [
        Check("test set", False, "60 rows, fewer than min_test_rows=100: too few to tell models apart")
    ]
    assert decision.rule.endswith("not approved, 1 check(s) failed (listed first below)")
    assert gate(y, noisy(y, 1, seed=1), champion, GatePolicy(min_test_rows=50)).approved


@pytest.mark.parametrize(("bound", "approved"), [(0.6, True), (0.99, False)])
def test_threshold_on_higher_is_better_metric_is_a_floor(bound, approved):
    y = truth()
    assert gate(y, noisy(y, 5, seed=1), policy=GatePolicy(thresholds={"r2": bound})).approved is approved


@pytest.mark.parametrize(("bound", "approved"), [(10.0, True), (1.0, False)])
def test_threshold_on_lower_is_better_metric_is_a_ceiling(bound, approved):
    y = truth()
    assert gate(y, noisy(y, 5, seed=1), policy=GatePolicy(thresholds={"rmse": bound})).approved is approved


def test_failed_threshold_reason_shows_value_and_bound():
    y = truth()
    predictions = noisy(y, 5, seed=1)
    r2 = r2_score(y, predictions)

    decision = gate(y, predictions, policy=GatePolicy(thresholds={"r2": 0.99}))

    assert decision.failed == [Check("threshold", False, f"r2 {r2:.4g} not >= 0.99")]


def test_a_threshold_on_a_metric_the_task_does_not_compute_stops_the_decision():
    y = truth()
    with pytest.raises(ValueError, match=r"gate_policy\['thresholds'\] names metric\(s\) \['accuracy'\] not computed"):
        gate(y, noisy(y, 5, seed=1), policy=GatePolicy(thresholds={"accuracy": 0.9}))


def test_not_better_than_the_baseline_is_rejected():
    y = truth()
    decision = gate(y, np.full(len(y), y.mean()) + 5, baseline=training_mean(y.mean()))

    assert not decision.approved
    assert decision.failed[0].name == "baseline"
    assert "it is significantly worse than the constant baseline" in decision.failed[0].detail


def test_beside_a_champion_the_baseline_check_takes_evaluate_models_scores():
    y = truth()
    bad = np.full(len(y), y.mean()) + 5
    decision = gate(y, bad, champion_of(y, bad + 5))

    assert not decision.approved
    assert decision.failed[0] == Check(
        "baseline",
        False,
        f"r2 {r2_score(y, bad):.4g} vs constant prediction -0.01 (no better than predicting a constant)",
    )


def test_threshold_on_mape_fails_saying_why_when_the_test_target_has_zeros():
    y = truth(rows=200)
    y[:3] = 0.0
    predictions = noisy(y, 5, seed=1)

    decision = gate(y, predictions, policy=GatePolicy(thresholds={"mape": 0.1, "r2": 0.5}), baseline=training_mean())

    assert not decision.approved
    assert decision.failed == [
        Check(
            "threshold",
            False,
            "mape cannot be checked: the test target has 3 of 200 values at or near zero "
            f"(|value| <= {0.01 * np.median(np.abs(y)):.4g}, 1% of the median |value|), where a percentage error is "
            "undefined",
        )
    ]
    assert decision.rule == "Cold start (no champion registered): not approved: threshold(s) mape failed"


# --- the Markdown reasons ----------------------------------------------------------------------------------------


def test_report_lists_failures_first_with_the_interval():
    y = truth()
    decision = gate(y, noisy(y, 12, seed=1), champion_of(y, noisy(y, 5, seed=2)))

    report = render_reasons(decision)

    assert report.startswith("# Challenger rejected\n")
    assert f"on {len(y)} test rows" in report
    checks = [line for line in report.splitlines() if line.startswith("- ")]
    assert checks[0].startswith("- FAILED champion v3")
    assert all(line.startswith("- passed") for line in checks[1:])
    assert checks == [f"- {check_line(check)}" for check in decision.failed + [c for c in decision.checks if c.passed]]
    assert "## Challenger vs champion" in report
    assert "Paired bootstrap over 1000 resamples" in report
