"""gate_model's fairness guard: on a test set where one group's labels were made systematically worse, a challenger
that scores better by learning that bias is refused with the group and the numbers, one that does not widen the gap
is approved; groups too small are not judged; the gaps are fairlearn's, on every bootstrap resample too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.metrics import mean_absolute_error

import model_bundle
from components._common import bootstrap, fairness, registry
from components._common.fairness_bootstrap import gaps_on_resamples, resampled_gaps
from components._common.scoring import Scored, score
from components.gate_model.champion import Champion
from components.gate_model.decision import decide
from components.gate_model.logic import decision_metrics, gate
from components.gate_model.policy import DEFAULT_MAX_FAIRNESS_GAP, GatePolicy
from components.gate_model.report import check_line, render_reasons
from components.register_model.logic import register
from components.train_model.logic import train

CLASSIFICATION_BASELINE = {"accuracy": 0.5, "balanced_accuracy": 0.5, "f1_macro": 0.33}
REGRESSION_BASELINE = {"r2": -0.01, "rmse": 90.0, "mae": 70.0, "mape": 0.5}
# Group C is smaller than the default min_group_rows (30): listed, never judged.
GROUP_SIZES = {"A": 900, "B": 580, "C": 20}


def groups_of(seed: int = 0) -> pd.Series:
    labels = np.concatenate([[name] * rows for name, rows in GROUP_SIZES.items()])
    return pd.Series(np.random.default_rng(seed).permutation(labels), name="group")


def flip(labels: np.ndarray, share: float, rng, where=None) -> np.ndarray:
    """``labels`` ("yes"/"no") with ``share`` of them (of the rows ``where`` is true) turned to the other one."""
    chosen = rng.random(len(labels)) < share
    if where is not None:
        chosen &= where
    return np.where(chosen, np.where(labels == "yes", "no", "yes"), labels)


def turn_down(labels: np.ndarray, share: float, rng, where) -> np.ndarray:
    """``labels`` with ``share`` of the "yes" of the rows ``where`` is true turned to "no": a bias against them."""
    return np.where((labels == "yes") & where & (rng.random(len(labels)) < share), "no", labels)


@pytest.fixture(scope="module")
def hiring():
    """Who deserves a "yes" is the same in every group; the recorded labels (the test set's truth, as the data says)
    turn half of group B's deserved "yes" into "no". The champion learnt a little of that bias; the biased
    challenger learnt all of it and fits the recorded labels better; the better challenger is less noisy than the
    champion in every group alike and learnt no more of the bias."""
    rng = np.random.default_rng(1)
    groups = groups_of()
    in_b = (groups == "B").to_numpy()
    deserved = np.where(rng.normal(size=len(groups)) > 0, "yes", "no")
    recorded = turn_down(deserved, 0.5, rng, in_b)
    champion = turn_down(flip(deserved, 0.15, rng), 0.1, rng, in_b)
    biased = flip(recorded, 0.05, rng)
    better = turn_down(flip(deserved, 0.10, rng), 0.1, rng, in_b)
    return recorded, groups, {"champion": champion, "biased": biased, "better": better}


def scored(y, predictions, task: str = "classification") -> Scored:
    return Scored(predictions=np.asarray(predictions), scores=score(task, y, predictions))


def decide_fairness(y, groups, challenger, champion=None, policy=None, task="classification", **options):
    return decide(
        task,
        pd.Series(y),
        scored(y, challenger, task),
        CLASSIFICATION_BASELINE if task == "classification" else REGRESSION_BASELINE,
        Champion(version="3", scored=scored(y, champion, task)) if champion is not None else Champion(),
        policy,
        groups={groups.name: groups},
        positive_label="yes" if task == "classification" else None,
        **options,
    )


def make_champion(bundle, model_name: str) -> str:
    version = register("", model_name, bundle.directory, {"f1_macro": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias(model_name, registry.CHAMPION, version)
    return version


def fairness_checks(decision):
    return [check for check in decision.checks if check.name == "fairness"]


def judged_rows(groups: pd.Series, minimum: int = fairness.MIN_GROUP_ROWS) -> np.ndarray:
    return groups.map(groups.value_counts()).to_numpy() >= minimum


# --- the acceptance case -----------------------------------------------------------------------------------------


def test_a_challenger_that_scores_better_by_learning_biased_labels_is_refused_naming_the_group(hiring):
    recorded, groups, models = hiring

    decision = decide_fairness(recorded, groups, models["biased"], models["champion"])

    # It does score better on the recorded labels, beyond noise: only the fairness guard stops it.
    assert next(check for check in decision.checks if check.name == "champion").passed
    assert decision.interval.low > 0
    assert not decision.approved
    failed = [check for check in decision.failed if check.name == "fairness"]
    assert failed and all(check.subject == f"group (worst group B, {GROUP_SIZES['B']} rows)" for check in failed)
    [difference] = [check for check in failed if check.detail.startswith("demographic_parity_difference")]
    gap = next(gap for gap in decision.fairness[0].gaps if gap.metric == "demographic_parity_difference")
    assert gap.widening > 0.05 and gap.refused
    line = check_line(difference)
    assert line.startswith("FAILED fairness group (worst group B, 580 rows): demographic_parity_difference ")
    assert f"{gap.challenger:.4g} vs champion {gap.champion:.4g}, widened by {gap.widening:+.4g} (95% CI [+" in line
    assert line.endswith("more than max_fairness_gap=0.05, beyond noise")
    assert "1 check(s) failed" not in decision.rule and "not approved" in decision.rule


def test_a_challenger_that_does_not_widen_the_gap_is_approved(hiring):
    recorded, groups, models = hiring

    decision = decide_fairness(recorded, groups, models["better"], models["champion"])

    assert decision.approved, decision.failed
    checks = fairness_checks(decision)
    assert [check.detail.split(" ")[0] for check in checks] == list(fairness.GAP_METRICS["classification"])
    assert all(check.passed and "within max_fairness_gap=" in check.detail for check in checks)


def test_gap_values_are_fairlearns_computed_directly_over_the_judged_groups(hiring):
    recorded, groups, models = hiring
    judged = judged_rows(groups)

    decision = decide_fairness(recorded, groups, models["biased"], models["champion"])

    [column] = decision.fairness
    assert column.challenger.judged_groups == ["A", "B"]
    for side in ("challenger", "champion"):
        truth = recorded[judged] == "yes"
        predicted = models["biased" if side == "challenger" else "champion"][judged] == "yes"
        where = groups[judged]
        expected = {
            "demographic_parity_difference": demographic_parity_difference(truth, predicted, sensitive_features=where),
            "demographic_parity_ratio": demographic_parity_ratio(truth, predicted, sensitive_features=where),
            "equalized_odds_difference": equalized_odds_difference(truth, predicted, sensitive_features=where),
        }
        actual = {gap.metric: getattr(gap, side) for gap in column.gaps}
        assert actual == pytest.approx(expected, abs=1e-12)
    metrics = decision_metrics(decision)
    assert metrics["challenger_demographic_parity_difference.group"] == column.gaps[0].challenger
    assert metrics["champion_demographic_parity_ratio.group"] == column.gaps[1].champion


def test_groups_under_min_group_rows_are_not_judged(hiring):
    recorded, groups, models = hiring
    # The better challenger, but never "yes" for anyone of the 20 rows of group C.
    against_c = np.where((groups == "C").to_numpy(), "no", models["better"])

    unjudged = decide_fairness(recorded, groups, against_c, models["champion"])
    judged = decide_fairness(recorded, groups, against_c, models["champion"], GatePolicy(min_group_rows=15))

    assert unjudged.approved, unjudged.failed
    assert [(group.value, group.judged) for group in unjudged.fairness[0].challenger.groups] == [
        ("A", True),
        ("B", True),
        ("C", False),
    ]
    assert "C (20 rows, not judged)" in render_reasons(unjudged)
    assert not judged.approved
    assert {check.subject for check in judged.failed} == {"group (worst group C, 20 rows)"}


def test_a_widening_beyond_the_tolerance_but_within_noise_is_not_refused():
    # Half of each group is "yes" and the champion predicts every label right (no gap); of group B's 40 rows, the
    # challenger says "no" to 3 of the "yes": a widening of 3/40 = 0.075 > 0.05 that three rows make, which
    # resampling the test rows shows could be chance.
    rng = np.random.default_rng(4)
    order = rng.permutation(300)
    groups = pd.Series(np.array(["A"] * 260 + ["B"] * 40)[order], name="group")
    recorded = np.array((["yes", "no"] * 130) + (["yes", "no"] * 20))[order]
    champion = recorded.copy()
    challenger = recorded.copy()
    b_yes = np.flatnonzero((groups == "B").to_numpy() & (recorded == "yes"))
    challenger[b_yes[:3]] = "no"

    decision = decide_fairness(recorded, groups, challenger, champion)

    [check] = [check for check in fairness_checks(decision) if check.detail.startswith("demographic_parity_diff")]
    assert check.passed and check.detail.endswith("more than max_fairness_gap=0.05 but within noise")
    assert "widened by +0.075" in check.detail


def test_a_regressor_that_serves_one_group_worse_is_refused_and_one_that_does_not_is_approved():
    rng = np.random.default_rng(2)
    groups = groups_of(seed=2)
    in_b = (groups == "B").to_numpy()
    y = 100 + 20 * rng.normal(size=len(groups))
    champion = y + rng.normal(0, 8, len(y))
    # Better on average (r2), by serving group A much better and group B worse than the champion does.
    biased = y + rng.normal(0, 1, len(y)) * np.where(in_b, 10.0, 3.0)
    fair = y + rng.normal(0, 6, len(y))

    refused = decide_fairness(y, groups, biased, champion, task="regression")
    approved = decide_fairness(y, groups, fair, champion, task="regression")

    assert next(check for check in refused.checks if check.name == "champion").passed
    assert {check.detail.split(" ")[0] for check in refused.failed} == {"mae_relative_gap", "rmse_relative_gap"}
    assert {check.subject for check in refused.failed} == {"group (worst group B, 580 rows)"}
    assert approved.approved, approved.failed
    # The gap is fairlearn's: the MAE of the worst judged group minus the best's, over the judged rows' MAE.
    judged = judged_rows(groups)
    frame = MetricFrame(
        metrics=mean_absolute_error, y_true=y[judged], y_pred=biased[judged], sensitive_features=groups[judged]
    )
    gap = next(gap for gap in refused.fairness[0].gaps if gap.metric == "mae_relative_gap")
    assert gap.challenger == pytest.approx(frame.difference() / frame.overall, abs=1e-12)


# --- what the policy decides -------------------------------------------------------------------------------------


def test_the_guard_is_on_by_default_and_null_turns_a_gap_off(hiring):
    recorded, groups, models = hiring
    off = {metric: None for metric in fairness.GAP_METRICS["classification"]}

    decision = decide_fairness(recorded, groups, models["biased"], models["champion"], GatePolicy(max_fairness_gap=off))

    assert GatePolicy().fairness_tolerances("classification") == {
        "demographic_parity_difference": 0.05,
        "demographic_parity_ratio": 0.1,
        "equalized_odds_difference": 0.05,
    }
    assert GatePolicy().fairness_tolerances("regression") == {"mae_relative_gap": 0.1, "rmse_relative_gap": 0.1}
    assert decision.approved, decision.failed
    assert all("not guarded (gate_policy['max_fairness_gap']" in check.detail for check in fairness_checks(decision))
    assert "| demographic_parity_difference |" in render_reasons(decision) and "| off |" in render_reasons(decision)


def test_a_looser_tolerance_lets_the_same_widening_through(hiring):
    recorded, groups, models = hiring
    loose = GatePolicy.from_mapping({"max_fairness_gap": {"demographic_parity_difference": 0.5}})

    decision = decide_fairness(recorded, groups, models["biased"], models["champion"], loose)

    failed = {check.detail.split(" ")[0] for check in decision.failed}
    assert "demographic_parity_difference" not in failed and "demographic_parity_ratio" in failed


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"max_fairness_gap": {"parity": 0.1}},
            r"max_fairness_gap'\] names unknown gap metric\(s\) \['parity'\]; gap metrics are \['demographic_parity",
        ),
        ({"max_fairness_gap": {"mae_relative_gap": -0.1}}, r"numbers >= 0 or null .*\['mae_relative_gap'\]"),
        ({"max_fairness_gap": {"mae_relative_gap": True}}, r"numbers >= 0 or null .*\['mae_relative_gap'\]"),
        # The parity gaps lie in [0, 1]: 80 (a percentage) would let any widening through, NaN turn the guard off.
        (
            {"max_fairness_gap": {"demographic_parity_ratio": 80}},
            r"^parameter gate_policy\['max_fairness_gap'\]\['demographic_parity_ratio'\] must be in \[0, 1\] or null "
            r"\(guard off\), got 80$",
        ),
        (
            {"max_fairness_gap": {"equalized_odds_difference": float("nan")}},
            r"\['equalized_odds_difference'\] must be in \[0, 1\] or null \(guard off\), got nan$",
        ),
        (
            {"max_fairness_gap": {"rmse_relative_gap": float("inf")}},
            r"\['rmse_relative_gap'\] must be finite and >= 0 or null \(guard off\), got inf$",
        ),
        ({"max_fairness_gap": [0.1]}, r"gate_policy\['max_fairness_gap'\] must be a dict"),
        ({"min_group_rows": 0}, r"gate_policy\['min_group_rows'\] must be at least 1"),
    ],
)
def test_bad_fairness_policy_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        GatePolicy.from_mapping(values)


def test_a_gap_of_the_other_task_is_refused_naming_it(hiring):
    recorded, groups, models = hiring
    policy = GatePolicy(max_fairness_gap={"mae_relative_gap": 0.2})

    with pytest.raises(ValueError, match=r"names gap metric\(s\) \['mae_relative_gap'\] not computed for class"):
        decide_fairness(recorded, groups, models["better"], models["champion"], policy)


def test_every_default_tolerance_belongs_to_a_gap_metric():
    assert set(DEFAULT_MAX_FAIRNESS_GAP) == {metric for gaps in fairness.GAP_METRICS.values() for metric in gaps}


# --- without a champion to compare with --------------------------------------------------------------------------


def test_a_cold_start_reports_the_gaps_without_judging_them(hiring):
    recorded, groups, models = hiring

    decision = decide_fairness(recorded, groups, models["biased"])

    [check] = fairness_checks(decision)
    assert check.passed and check.subject == "group"
    assert check.detail.startswith("demographic_parity_difference ")
    assert check.detail.endswith("; no champion to compare with (cold start): reported, not judged")
    assert "(worst group B)" in check.detail
    report = render_reasons(decision)
    assert "## Fairness" in report and "### group" in report
    assert "No champion to compare with: the gaps are reported, not judged." in report


def test_an_incompatible_champion_reports_the_gaps_as_not_comparable(hiring):
    recorded, groups, models = hiring
    y = pd.Series(recorded)

    decision = decide(
        "classification",
        y,
        scored(recorded, models["better"]),
        CLASSIFICATION_BASELINE,
        Champion(version="2", incompatibility="it predicts target 'x', the challenger 'y'"),
        groups={"group": groups},
        positive_label="yes",
    )

    [check] = fairness_checks(decision)
    assert check.detail.endswith("the champion is not comparable on this data: reported, not judged")


def test_a_column_with_one_judged_group_has_no_gap_to_judge(hiring):
    recorded, groups, models = hiring

    decision = decide_fairness(recorded, groups, models["biased"], models["champion"], GatePolicy(min_group_rows=600))

    [check] = fairness_checks(decision)
    assert check.passed
    assert check.detail == (
        "fewer than two groups of at least min_group_rows=600 test rows (A (900), B (580), C (20)): no gap to judge"
    )


# --- the gaps on bootstrap resamples -----------------------------------------------------------------------------


def classes_and_predictions(task: str, positive_label, rows: int, rng):
    if task == "regression":
        y = rng.normal(50, 10, rows)
        return y, y + rng.normal(0, 5, rows)
    labels = ["yes", "no"] if positive_label else ["x", "y", "z"]
    y = rng.choice(labels, rows)
    return y, np.where(rng.random(rows) < 0.7, y, rng.choice(labels, rows))


@pytest.mark.parametrize(
    ("task", "positive_label"), [("classification", "yes"), ("classification", None), ("regression", None)]
)
def test_gaps_on_a_resample_equal_fairness_assess_on_the_resampled_rows(task, positive_label):
    rng = np.random.default_rng(5)
    rows = 400
    groups = pd.Series(rng.choice(["a", "b", "c", "d"], rows, p=[0.5, 0.3, 0.15, 0.05]), name="g")
    y, predicted = classes_and_predictions(task, positive_label, rows, rng)
    full = fairness.assess(task, y, predicted, groups, positive_label=positive_label)
    labels = groups.to_numpy().astype(str)
    drawn = rng.integers(0, rows, rows)
    counts = np.vstack([np.ones(rows), np.bincount(drawn, minlength=rows)])

    resampled = gaps_on_resamples(task, y, predicted, labels, full.judged_groups, counts, positive_label)
    # With every row of a judged group's class counting (min_group_rows=1), the groups whose rates are compared are
    # the same on the resample as on all the rows, so assess on the resampled rows is the reference.
    any_rows = gaps_on_resamples(task, y, predicted, labels, full.judged_groups, counts, positive_label, 1)

    # The judged groups are those of the test rows (d, about 20 rows, is not), kept on every resample.
    kept = drawn[np.isin(labels[drawn], full.judged_groups)]
    expected = fairness.assess(
        task, y[kept], predicted[kept], groups.iloc[kept], positive_label=positive_label, min_group_rows=1
    )
    assert {metric: values[0] for metric, values in resampled.items()} == pytest.approx(full.gaps, abs=1e-12)
    assert {metric: values[1] for metric, values in any_rows.items()} == pytest.approx(expected.gaps, abs=1e-12)


@pytest.mark.parametrize(("task", "positive_label"), [("classification", None), ("regression", None)])
def test_gaps_are_the_same_however_the_resamples_are_chunked(monkeypatch, task, positive_label):
    # Large test sets are resampled one resample at a time: each row's terms are made once, for every chunk.
    rng = np.random.default_rng(8)
    rows = 300
    groups = rng.choice(["a", "b", "c"], rows)
    y, predicted = classes_and_predictions(task, positive_label, rows, rng)
    arguments = (task, y, [predicted, y if task == "classification" else predicted * 1.1], groups, ["a", "b", "c"])
    whole = resampled_gaps(*arguments, positive_label, samples=40, seed=2, min_group_rows=5)

    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK_CELLS", rows)
    one_at_a_time = resampled_gaps(*arguments, positive_label, samples=40, seed=2, min_group_rows=5)

    # And one resample's sums at a time within a chunk (a task of many classes and groups).
    counts = np.stack([np.bincount(rng.integers(0, rows, rows), minlength=rows) for _ in range(6)])
    in_blocks = gaps_on_resamples(task, y, predicted, groups, ["a", "b", "c"], counts, positive_label, 5)
    monkeypatch.setattr(bootstrap, "BOOTSTRAP_CHUNK_CELLS", 1)

    for chunked, together in [
        *zip(one_at_a_time, whole, strict=True),
        (gaps_on_resamples(task, y, predicted, groups, ["a", "b", "c"], counts, positive_label, 5), in_blocks),
    ]:
        assert chunked.keys() == together.keys()
        for metric in together:
            np.testing.assert_allclose(chunked[metric], together[metric], atol=1e-12)


# --- the step ------------------------------------------------------------------------------------------------------


def test_the_step_names_an_unknown_sensitive_column(mlflow_state, regression_bundle):
    bundle, test = regression_bundle

    with pytest.raises(ValueError, match=r"parameter sensitive_columns: unknown column\(s\) \['gender'\]"):
        gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(), sensitive_columns=["gender"])
    with pytest.raises(ValueError, match=r"parameter sensitive_columns: 'price' is the target"):
        gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(), sensitive_columns=["price"])


def test_the_step_reports_the_gaps_of_each_sensitive_column(mlflow_state, regression_bundle):
    bundle, test = regression_bundle

    decision = gate(
        bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(min_group_rows=15), sensitive_columns=["neighbourhood"]
    )

    [column] = decision.fairness
    assert column.column == "neighbourhood" and column.champion is None
    metrics = decision_metrics(decision)
    assert {"challenger_mae_relative_gap.neighbourhood", "challenger_rmse_relative_gap.neighbourhood"} <= set(metrics)


def biased_applicants(rows: int, seed: int) -> pd.DataFrame:
    """Applicants of two groups with the same skills; the recorded decision (``hired``) turns half of group B's
    deserved "yes" into "no": labels made systematically worse for one group."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], rows, p=[0.6, 0.4])
    skill, experience = rng.normal(size=rows), rng.normal(size=rows)
    deserved = skill + 0.5 * experience + rng.normal(0, 0.5, rows) > 0
    hired = deserved & ~((group == "B") & (rng.random(rows) < 0.5))
    return pd.DataFrame({"group": group, "skill": skill, "experience": experience, "hired": hired.astype(int)})


def test_the_step_refuses_a_trained_model_that_learnt_the_bias_from_the_group_column(mlflow_state, tmp_path):
    training, test = biased_applicants(3000, seed=1), biased_applicants(1500, seed=2)
    # The champion never saw the group (an excluded column); the challenger uses it, learns to say "no" to group B
    # and so fits the recorded labels better.
    blind, blind_card = train(
        training, "hired", "classification", model_type="linear", excluded_columns={"group": "sensitive"}
    )
    model_bundle.save(tmp_path / "champion", blind, blind_card, {})
    make_champion(model_bundle.load(tmp_path / "champion"), "hiring")
    learnt, learnt_card = train(training, "hired", "classification", model_type="linear")
    model_bundle.save(tmp_path / "challenger", learnt, learnt_card, {})

    decision = gate(
        model_bundle.load(tmp_path / "challenger"),
        test,
        "hiring",
        CLASSIFICATION_BASELINE,
        GatePolicy(),
        sensitive_columns=["group"],
    )

    assert next(check for check in decision.checks if check.name == "champion").passed  # better on these labels
    assert not decision.approved
    subjects = {check.subject.split(",")[0] for check in decision.failed if check.name == "fairness"}
    assert subjects == {"group (worst group B"}
    gap = next(gap for gap in decision.fairness[0].gaps if gap.metric == "demographic_parity_difference")
    assert gap.refused and gap.champion < gap.challenger
