"""gate_model: the promotion decision, and scoring the registry's champion on this run's test set."""

from __future__ import annotations

import pytest

from components._common import registry
from components._common.scoring import score_bundle
from components.gate_model.logic import Champion, check_thresholds, decide, render_reasons, score_champion
from components.register_model.logic import register

REGRESSION_BASELINE = {"r2": -0.01, "rmse": 90000.0, "mae": 70000.0}
CLASSIFICATION_BASELINE = {"accuracy": 0.3, "balanced_accuracy": 0.14, "f1_macro": 0.07}


def regression_scores(r2: float = 0.8123, rmse: float = 30000.0, mae: float = 20000.0) -> dict[str, float]:
    return {"r2": r2, "rmse": rmse, "mae": mae}


def champion_with(r2: float, version: str = "3") -> Champion:
    return Champion(version=version, scores=regression_scores(r2=r2))


def failed(decision) -> list[str]:
    return [reason for reason in decision.reasons if reason.startswith("FAILED")]


# --- decide ------------------------------------------------------------------------------------------------------


def test_cold_start_is_approved_on_the_absolute_checks():
    decision = decide("regression", regression_scores(), REGRESSION_BASELINE, Champion())

    assert decision.approved
    assert decision.primary_metric == "r2"
    assert decision.challenger_score == 0.8123
    assert failed(decision) == []
    assert any("cold start" in reason for reason in decision.reasons)


def test_better_than_champion_is_approved():
    decision = decide("regression", regression_scores(r2=0.85), REGRESSION_BASELINE, champion_with(0.80))

    assert decision.approved
    assert decision.champion.version == "3"


def test_worse_than_champion_is_rejected():
    decision = decide("regression", regression_scores(r2=0.75), REGRESSION_BASELINE, champion_with(0.80))

    assert not decision.approved
    assert len(failed(decision)) == 1
    assert failed(decision)[0].startswith("FAILED champion v3: r2 0.75 vs 0.8")


def test_tie_with_champion_is_approved_when_no_improvement_is_required():
    decision = decide(
        "regression", regression_scores(r2=0.8), REGRESSION_BASELINE, champion_with(0.8), min_improvement=0.0
    )

    assert decision.approved


def test_gain_below_min_improvement_is_rejected():
    decision = decide(
        "regression", regression_scores(r2=0.81), REGRESSION_BASELINE, champion_with(0.80), min_improvement=0.02
    )

    assert not decision.approved
    assert "required +0.02" in failed(decision)[0]


def test_gain_of_at_least_min_improvement_is_approved():
    decision = decide(
        "regression", regression_scores(r2=0.83), REGRESSION_BASELINE, champion_with(0.80), min_improvement=0.02
    )

    assert decision.approved


def test_classification_compares_f1_macro():
    champion = Champion(version="1", scores={"accuracy": 0.9, "balanced_accuracy": 0.5, "f1_macro": 0.6})
    challenger = {"accuracy": 0.7, "balanced_accuracy": 0.6, "f1_macro": 0.65}

    decision = decide("classification", challenger, CLASSIFICATION_BASELINE, champion)

    assert decision.primary_metric == "f1_macro"
    assert decision.challenger_score == 0.65
    assert decision.approved  # a lower accuracy does not matter: f1_macro decides


@pytest.mark.parametrize(
    ("r2", "approved"),
    [(0.6, True), (0.61, True), (0.59, False)],
)
def test_threshold_on_higher_is_better_metric_is_a_floor(r2, approved):
    decision = decide("regression", regression_scores(r2=r2), REGRESSION_BASELINE, Champion(), thresholds={"r2": 0.6})

    assert decision.approved is approved


@pytest.mark.parametrize(
    ("rmse", "approved"),
    [(40000.0, True), (39000.0, True), (41000.0, False)],
)
def test_threshold_on_lower_is_better_metric_is_a_ceiling(rmse, approved):
    decision = decide(
        "regression", regression_scores(rmse=rmse), REGRESSION_BASELINE, Champion(), thresholds={"rmse": 40000}
    )

    assert decision.approved is approved


def test_failed_threshold_reason_shows_value_and_bound():
    decision = decide(
        "regression",
        regression_scores(r2=0.5512, rmse=45000.0),
        REGRESSION_BASELINE,
        Champion(),
        thresholds={"r2": 0.6, "rmse": 40000},
    )

    assert failed(decision) == [
        "FAILED threshold: r2 0.5512 not >= 0.6",
        "FAILED threshold: rmse 4.5e+04 not <= 40000",
    ]


def test_unknown_threshold_metric_is_named():
    with pytest.raises(
        ValueError, match=r"parameter thresholds names metric\(s\) \['auc'\] not computed for regression"
    ):
        decide("regression", regression_scores(), REGRESSION_BASELINE, Champion(), thresholds={"auc": 0.9})


def test_threshold_of_the_other_task_is_named():
    with pytest.raises(ValueError, match=r"\['accuracy'\] not computed for regression; use \['r2', 'rmse', 'mae'\]"):
        check_thresholds("regression", {"accuracy": 0.9})


def test_threshold_that_is_not_a_number_is_named():
    with pytest.raises(ValueError, match=r"thresholds must map metrics to numbers; \['r2'\] are not numbers"):
        check_thresholds("regression", {"r2": "0.6"})


@pytest.mark.parametrize("r2", [-0.01, -0.5])
def test_not_better_than_the_baseline_is_rejected(r2):
    decision = decide("regression", regression_scores(r2=r2), REGRESSION_BASELINE, Champion())

    assert not decision.approved
    assert "no better than predicting a constant" in failed(decision)[0]


def test_champion_with_a_problem_blocks_promotion():
    champion = Champion(version="4", problem="missing column(s) ['rooms']")

    decision = decide("regression", regression_scores(r2=0.99), REGRESSION_BASELINE, champion)

    assert not decision.approved
    assert failed(decision) == ["FAILED champion v4: cannot be compared on this test set: missing column(s) ['rooms']"]


def test_reasons_mention_the_numbers():
    decision = decide(
        "regression",
        regression_scores(r2=0.8123),
        REGRESSION_BASELINE,
        champion_with(0.7456, version="7"),
        thresholds={"r2": 0.5},
        min_improvement=0.01,
    )

    assert decision.reasons == [
        "passed threshold: r2 0.8123 >= 0.5",
        "passed baseline: r2 0.8123 vs constant prediction -0.01",
        "passed champion v7: r2 0.8123 vs 0.7456 (improvement +0.0667, required +0.01)",
    ]


def test_failures_are_listed_first_in_the_report():
    decision = decide(
        "regression", regression_scores(r2=0.7), REGRESSION_BASELINE, champion_with(0.8), thresholds={"r2": 0.5}
    )

    report = render_reasons(decision)

    assert report.startswith("# Challenger rejected\n")
    assert "Primary metric `r2`: 0.7." in report
    lines = [line for line in report.splitlines() if line.startswith("- ")]
    assert lines[0].startswith("- FAILED champion v3")
    assert all(line.startswith("- passed") for line in lines[1:])


def test_report_of_an_approved_challenger():
    report = render_reasons(decide("regression", regression_scores(), REGRESSION_BASELINE, Champion()))

    assert report.startswith("# Challenger approved\n")


# --- score_champion against a real registry ----------------------------------------------------------------------


def register_bundle(bundle, model_name: str, job: str = "") -> str:
    return register("", model_name, bundle.directory, {"r2": 0.5}, True, "approved", pipeline_job_id=job).version


def test_no_registered_model_means_no_champion(mlflow_state, regression_bundle):
    _, test = regression_bundle

    assert score_champion("", "houses", test, "price") == Champion()


def test_registered_model_without_champion_alias_means_no_champion(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    register_bundle(bundle, "houses")  # alias challenger only

    assert score_champion("", "houses", test, "price") == Champion()


def test_champion_is_scored_on_this_test_set(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = register_bundle(bundle, "houses")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)

    champion = score_champion("", "houses", test, "price")

    assert champion.version == version
    assert champion.problem is None
    assert champion.scores == pytest.approx(score_bundle(bundle, test, "price"))


def test_champion_predicting_another_target_is_a_problem(mlflow_state, regression_bundle, classification_bundle):
    price_model, _ = regression_bundle
    _, label_test = classification_bundle
    version = register_bundle(price_model, "houses")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)

    champion = score_champion("", "houses", label_test, "energy_label")

    assert champion.version == version
    assert champion.scores is None
    assert champion.problem == "it predicts 'price', this run predicts 'energy_label'"


def test_champion_missing_a_column_of_this_test_set_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = register_bundle(bundle, "houses")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)

    champion = score_champion("", "houses", test.drop(columns=["rooms"]), "price")

    assert champion.scores is None
    assert "missing column(s) ['rooms']" in champion.problem


def test_champion_whose_files_do_not_match_the_registered_digest_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = register_bundle(bundle, "houses")
    client = registry.connect("")
    client.set_registered_model_alias("houses", registry.CHAMPION, version)
    client.set_model_version_tag("houses", version, "model_sha256", "f" * 64)

    champion = score_champion("", "houses", test, "price")

    assert champion.scores is None
    assert "digest mismatch" in champion.problem


def test_problem_champion_rejects_the_challenger_end_to_end(mlflow_state, regression_bundle, classification_bundle):
    price_model, _ = regression_bundle
    _, label_test = classification_bundle
    version = register_bundle(price_model, "houses")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
    champion = score_champion("", "houses", label_test, "energy_label")

    decision = decide(
        "classification",
        {"accuracy": 0.9, "balanced_accuracy": 0.9, "f1_macro": 0.9},
        CLASSIFICATION_BASELINE,
        champion,
    )

    assert not decision.approved
    assert f"champion v{version}: cannot be compared" in failed(decision)[0]
