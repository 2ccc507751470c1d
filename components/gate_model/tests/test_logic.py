"""gate_model: its policy parameter (old parameters deprecated), the champion as found in a real registry (absent,
unloadable, tampered, incompatible, scored), and the step end to end as its component runs it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp import dsl

import model_bundle
from components._common import registry
from components._common.datasets import write_dataset
from components._common.scoring import Scored, score_bundle
from components.gate_model.champion import Champion, incompatibility, load_champion
from components.gate_model.component import gate_model
from components.gate_model.decision import decide
from components.gate_model.logic import decision_metrics, gate
from components.gate_model.policy import GatePolicy
from components.register_model.logic import register
from model_bundle import SCHEMA_FILE

REGRESSION_BASELINE = {"r2": -0.01, "rmse": 90.0, "mae": 70.0, "mape": 0.5}
DEPRECATED = "DEPRECATED: parameter {old} will be removed in the next release; set gate_policy[{key!r}] instead"


# --- the policy parameter ----------------------------------------------------------------------------------------


def test_policy_from_a_kfp_dict_turns_whole_floats_into_integers():
    policy = GatePolicy.from_mapping({"bootstrap_samples": 200.0, "confidence": 0.9, "ties": "promote_challenger"})

    assert policy == GatePolicy(bootstrap_samples=200, confidence=0.9, ties="promote_challenger")


def test_thresholds_and_min_improvement_are_policy_keys_with_their_defaults():
    assert (GatePolicy().thresholds, GatePolicy().min_improvement) == ({}, 0.0)

    policy = GatePolicy.from_mapping({"thresholds": {"r2": 0.6}, "min_improvement": 0})

    assert policy == GatePolicy(thresholds={"r2": 0.6}, min_improvement=0.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"confidense": 0.9}, r"unknown key\(s\) \['confidense'\]"),
        ({"ties": "coin_flip"}, r"gate_policy\['ties'\] must be one of \('keep_champion', 'promote_challenger'\)"),
        ({"bootstrap_samples": 2.5}, r"gate_policy\['bootstrap_samples'\] must be an integer, got 2.5"),
        ({"confidence": 1.0}, r"gate_policy\['confidence'\] must be in \[0.5, 1\)"),
        ({"min_test_rows": 0}, r"gate_policy\['min_test_rows'\] must be at least 1"),
        ({"min_slice_rows": 0}, r"gate_policy\['min_slice_rows'\] must be at least 1"),
        ({"max_slice_regression": -0.1}, r"gate_policy\['max_slice_regression'\] must be in \[0, 1\], got -0.1"),
        ({"cold_start": True}, r"gate_policy\['cold_start'\] must be a str"),
        ({"thresholds": [0.6]}, r"gate_policy\['thresholds'\] must be a dict"),
        ({"min_improvement": "a lot"}, r"gate_policy\['min_improvement'\] must be a float"),
    ],
)
def test_bad_policy_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        GatePolicy.from_mapping(values)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # A share written as a percentage: no model reaches an accuracy of 90.
        ({"thresholds": {"accuracy": 90}}, r"\['thresholds'\]\['accuracy'\] must be in \[0, 1\], got 90$"),
        ({"thresholds": {"roc_auc": -0.1}}, r"\['thresholds'\]\['roc_auc'\] must be in \[0, 1\], got -0.1$"),
        ({"thresholds": {"r2": 1.5}}, r"\['thresholds'\]\['r2'\] must be finite and <= 1, got 1.5$"),
        ({"thresholds": {"rmse": -5}}, r"\['thresholds'\]\['rmse'\] must be finite and >= 0, got -5$"),
        ({"thresholds": {"log_loss": INF}}, r"\['thresholds'\]\['log_loss'\] must be finite and >= 0, got inf$"),
        # NaN fails every comparison: a floor or ceiling of NaN would hold no model, or every model.
        ({"thresholds": {"r2": NAN}}, r"\['thresholds'\]\['r2'\] must be finite and <= 1, got nan$"),
        ({"thresholds": {"auc": NAN}}, r"\['thresholds'\]\['auc'\] must be finite, got nan$"),
        ({"min_improvement": NAN}, r"gate_policy\['min_improvement'\] must be in \[0, 1\], got nan$"),
        ({"min_improvement": 5.0}, r"gate_policy\['min_improvement'\] must be in \[0, 1\], got 5.0$"),
        ({"min_improvement": -0.1}, r"gate_policy\['min_improvement'\] must be in \[0, 1\], got -0.1$"),
        ({"max_slice_regression": NAN}, r"gate_policy\['max_slice_regression'\] must be in \[0, 1\], got nan$"),
        ({"max_slice_regression": 2.0}, r"gate_policy\['max_slice_regression'\] must be in \[0, 1\], got 2.0$"),
        ({"confidence": NAN}, r"gate_policy\['confidence'\] must be in \[0.5, 1\), got nan$"),
        ({"confidence": 95.0}, r"gate_policy\['confidence'\] must be in \[0.5, 1\), got 95.0$"),
        ({"bootstrap_samples": NAN}, r"gate_policy\['bootstrap_samples'\] must be an integer, got nan$"),
        ({"bootstrap_samples": 0}, r"gate_policy\['bootstrap_samples'\] must be at least 1, got 0$"),
        ({"seed": -1}, r"gate_policy\['seed'\] must be at least 0, got -1$"),
    ],
)
def test_policy_values_outside_their_range_are_refused_naming_key_value_and_range(values, message):
    with pytest.raises(ValueError, match=rf"^parameter .*{message}"):
        GatePolicy.from_mapping(values)


def test_policy_values_at_the_ends_of_their_ranges_are_accepted():
    policy = GatePolicy.from_mapping(
        {
            "thresholds": {"accuracy": 1, "f1_macro": 0, "r2": -3.0, "rmse": 0, "log_loss": 2.5},
            "min_improvement": 1,
            "max_slice_regression": 0,
            "confidence": 0.5,
            "seed": 0,
        }
    )

    assert policy.thresholds["r2"] == -3.0 and policy.min_improvement == 1.0


def test_unknown_threshold_metric_is_named():
    with pytest.raises(
        ValueError, match=r"parameter gate_policy\['thresholds'\] names metric\(s\) \['auc'\] not computed"
    ):
        GatePolicy(thresholds={"auc": 0.9}).check_thresholds("regression")


def test_threshold_that_is_not_a_number_is_named():
    with pytest.raises(
        ValueError, match=r"gate_policy\['thresholds'\] must map metrics to numbers; \['r2'\] are not numbers"
    ):
        GatePolicy.from_mapping({"thresholds": {"r2": "0.6"}})


@pytest.mark.parametrize(
    ("parameters", "key", "expected"),
    [
        ({"min_improvement": 0.05}, "min_improvement", 0.05),
        ({"thresholds": {"r2": 0.6}}, "thresholds", {"r2": 0.6}),
    ],
)
def test_a_deprecated_parameter_still_sets_its_key_and_names_the_new_one(capsys, parameters, key, expected):
    policy = GatePolicy.from_mapping({}, **parameters)

    assert getattr(policy, key) == expected
    assert DEPRECATED.format(old=key, key=key) in capsys.readouterr().err


def test_a_deprecated_parameter_contradicting_gate_policy_is_refused():
    with pytest.raises(
        ValueError,
        match=r"parameter min_improvement \(deprecated\) sets 'min_improvement' to 0.05 but "
        r"gate_policy\['min_improvement'\] sets it to 0.1; set only gate_policy\['min_improvement'\]",
    ):
        GatePolicy.from_mapping({"min_improvement": 0.1}, min_improvement=0.05)
    with pytest.raises(ValueError, match=r"parameter thresholds \(deprecated\) sets 'thresholds'"):
        GatePolicy.from_mapping({"thresholds": {"r2": 0.7}}, thresholds={"r2": 0.6})


def test_without_the_old_parameters_nothing_is_deprecated(capsys):
    assert GatePolicy.from_mapping({"min_improvement": 0.1}).min_improvement == 0.1
    assert "DEPRECATED" not in capsys.readouterr().err


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
    assert champion.scored.scores == pytest.approx(score_bundle(bundle, test).scores)
    assert champion.scored.predictions == pytest.approx(bundle.predict(test.drop(columns=["price"])))


def test_champion_artifact_missing_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    make_champion(bundle)
    shutil.rmtree(mlflow_state / "mlartifacts")

    champion = load_champion("", "houses", bundle, test)

    assert champion.scored is None
    assert champion.problem
    decision = decide("regression", test["price"], Scored(np.zeros(1), {"r2": 0.9}), REGRESSION_BASELINE, champion)
    assert decision.failed[-1].name == "champion"
    assert "its files cannot be loaded" in decision.failed[-1].detail


def test_champion_whose_files_do_not_match_the_registered_digest_is_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = make_champion(bundle)
    registry.connect("").set_model_version_tag("houses", version, "model_sha256", "f" * 64)

    champion = load_champion("", "houses", bundle, test)

    assert champion.scored is None
    assert "digest mismatch" in champion.problem


def test_an_unloadable_champion_is_named_by_its_version_registry_and_registered_file(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    make_champion(bundle)
    [model_file] = (mlflow_state / "mlartifacts").rglob(model_bundle.MODEL_FILE)
    with model_file.open("ab") as stream:
        stream.write(b"tampered")

    champion = load_champion("", "houses", bundle, test)

    # Not the temporary directory it was downloaded to (gone by then): what a person can find and restore.
    source = registry.champion("", "houses").source
    assert champion.problem.startswith(
        f"houses version 1 (the champion) in the registry {registry.local_tracking_uri()}: "
    )
    assert f"sha256 digest mismatch for {source}/{model_bundle.MODEL_FILE}: expected " in champion.problem


def test_a_tampered_document_of_the_champion_stops_the_gate_naming_the_file(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    make_champion(bundle)
    [schema_file] = (mlflow_state / "mlartifacts").rglob(SCHEMA_FILE)
    schema = json.loads(schema_file.read_text())
    schema["columns"] = schema["columns"][1:]  # e.g. a column's contract quietly dropped
    schema_file.write_text(json.dumps(schema))

    decision = gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(incompatible_champion="approve"))

    assert decision.champion.scored is None
    assert SCHEMA_FILE in decision.champion.problem and "digest" in decision.champion.problem
    assert not decision.approved
    [check] = decision.failed
    assert check.name == "champion"
    assert check.detail.startswith("its files cannot be loaded (") and SCHEMA_FILE in check.detail


def test_champion_of_an_older_model_format_is_incompatible_not_a_problem(mlflow_state, regression_bundle):
    bundle, test = regression_bundle
    version = make_champion(bundle)
    # As an older release registered it: no card_sha256 tag yet (with it, an edited format is tampering).
    registry.connect("").delete_model_version_tag("houses", version, registry.CARD_SHA256_TAG)
    [card_file] = (mlflow_state / "mlartifacts").rglob(model_bundle.CARD_FILE)
    card_file.write_text(card_file.read_text().replace('"format_version": 2', '"format_version": 1'))

    champion = load_champion("", "houses", bundle, test)

    # Intact files of an older release: the incompatible_champion policy decides, no person needs to step in.
    assert champion.problem is None
    assert "has format_version 1, expected 2" in champion.incompatibility
    decision = decide("regression", test["price"], Scored(np.zeros(1), {"r2": 0.9}), REGRESSION_BASELINE, champion)
    assert not any("cannot be loaded" in check.detail for check in decision.checks)


def test_champion_pickled_by_another_scikit_learn_is_incompatible_and_the_policy_decides(
    mlflow_state, regression_bundle
):
    bundle, test = regression_bundle
    version = make_champion(bundle)
    # As a release pinning another scikit-learn registered it: its card (and the registry's digest of it) say so.
    [card_file] = (mlflow_state / "mlartifacts").rglob(model_bundle.CARD_FILE)
    card = json.loads(card_file.read_text())
    runtime = card["library_versions"]["scikit-learn"]
    card["library_versions"]["scikit-learn"] = "0.24.2"
    card_file.write_text(json.dumps(card))
    client = registry.connect("")
    client.set_model_version_tag("houses", version, registry.CARD_SHA256_TAG, model_bundle.file_sha256(card_file))

    champion = load_champion("", "houses", bundle, test)

    # Intact files a person can still choose to replace: not a problem blocking every promotion.
    assert champion.problem is None and champion.scored is None
    assert f"was written by scikit-learn 0.24.2 but this runtime has {runtime}" in champion.incompatibility
    rejected = gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy())
    assert not rejected.approved
    assert "policy incompatible_champion=reject: a person decides" in rejected.failed[-1].detail
    approved = gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(incompatible_champion="approve"))
    assert approved.approved, approved.rule


def test_champion_predicting_another_target_is_incompatible(mlflow_state, regression_bundle, classification_bundle):
    price_model, _ = regression_bundle
    label_model, label_test = classification_bundle
    make_champion(price_model)

    champion = load_champion("", "houses", label_model, label_test)

    assert champion.scored is None
    assert champion.incompatibility == "it predicts target 'price', the challenger 'energy_label'"


def test_champion_needing_a_column_this_data_lacks_is_incompatible(regression_bundle):
    bundle, test = regression_bundle

    assert incompatibility(bundle.card, bundle.schema, bundle, test.drop(columns=["rooms"])) == (
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

    reason = incompatibility(bundle.card, bundle.schema, challenger, test)

    assert reason.startswith("column 'rooms' was numeric (integer) in the reference schema, now categorical (text)")


def test_champion_answering_classes_this_data_lacks_is_incompatible(classification_bundle):
    # A label column with one missing value is floats: the classes "0", "1" become "0.0", "1.0".
    bundle, test = classification_bundle
    renamed = [f"{label}.0" for label in bundle.card.classes]
    challenger = dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, classes=renamed))

    reason = incompatibility(bundle.card, bundle.schema, challenger, test)

    assert reason == (
        f"it answers class(es) {bundle.card.classes} that this data does not have (its classes: {renamed}): were "
        "the labels renamed or retyped?"
    )
    # A class new in this data leaves the champion comparable: it is simply never right on that class.
    grown = dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, classes=[*bundle.card.classes, "Z"]))
    assert incompatibility(bundle.card, bundle.schema, grown, test) is None


def test_compatible_champion_has_no_incompatibility(regression_bundle):
    bundle, test = regression_bundle

    assert incompatibility(bundle.card, bundle.schema, bundle, test) is None


# --- the step end to end -----------------------------------------------------------------------------------------


def test_the_step_compares_with_the_champion_per_slice_with_missing_values_as_their_own_slice(
    mlflow_state, regression_bundle
):
    bundle, test = regression_bundle
    test = test.copy()
    test.iloc[:40, test.columns.get_loc("neighbourhood")] = np.nan
    make_champion(bundle)

    decision = gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(min_test_rows=50), "neighbourhood")

    # The same model on both sides: a tie, kept champion; every judged slice scores the same for both.
    assert decision.interval.gain == 0.0
    assert [check.name for check in decision.failed] == ["champion"]
    missing = next(result for result in decision.slices if result.value == "(missing)")
    assert missing.rows == test["neighbourhood"].isna().sum() >= 40
    assert missing.judged and missing.challenger == missing.champion
    assert decision_metrics(decision) == {
        "challenger_r2": decision.challenger_score,
        "champion_r2": decision.champion.scored.scores["r2"],
        "gain": 0.0,
        "gain_ci_low": decision.interval.low,
        "gain_ci_high": decision.interval.high,
        "approved": 0,
    }


def test_the_step_names_a_slice_column_that_is_not_a_feature(mlflow_state, regression_bundle):
    bundle, test = regression_bundle

    with pytest.raises(ValueError, match=r"slice_column: 'price' is not a feature column of the test set"):
        gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy(), "price")


def test_a_cold_start_logs_the_gain_over_the_constant_baseline(mlflow_state, regression_bundle):
    bundle, test = regression_bundle

    decision = gate(bundle, test, "houses", REGRESSION_BASELINE, GatePolicy())

    interval = decision.baseline_interval
    assert decision.approved, decision.checks
    assert decision_metrics(decision) == {
        "challenger_r2": decision.challenger_score,
        "baseline_gain": interval.gain,
        "baseline_gain_ci_low": interval.low,
        "baseline_gain_ci_high": interval.high,
        "approved": 1,
    }


def run_component(tmp_path: Path, bundle, test: pd.DataFrame, **parameters) -> tuple[bool, str]:
    test_artifact = dsl.Dataset(name="test", uri=str(tmp_path / "test"), metadata={})
    write_dataset(test, test_artifact.path)
    reasons = dsl.Markdown(name="reasons", uri=str(tmp_path / "reasons"), metadata={})
    approved = gate_model.python_func(
        model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
        test=test_artifact,
        model_name="houses",
        baseline_scores=REGRESSION_BASELINE,
        reasons=reasons,
        metrics=dsl.Metrics(name="metrics", uri=str(tmp_path / "metrics"), metadata={}),
        **parameters,
    )
    return approved, Path(reasons.path).read_text()


def test_the_deprecated_thresholds_parameter_still_decides_through_the_component(
    mlflow_state, regression_bundle, tmp_path, capsys
):
    bundle, test = regression_bundle

    approved, report = run_component(tmp_path, bundle, test, thresholds={"r2": 0.999})

    assert approved is False
    assert "- FAILED threshold: r2 " in report and "not >= 0.999" in report
    assert DEPRECATED.format(old="thresholds", key="thresholds") in capsys.readouterr().err
