"""rollback_model's logic against a real local MLflow registry: which version, each refusal naming its problem,
what force overrides (an incompatible data contract) and what it never does (a file failing its digest)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

import model_bundle
from components._common import history, registry
from components._common.datasets import read_dataset
from components.deploy_model.smoke import DeploymentError
from components.ingest_data.samples import house_prices
from components.prepare_data.logic import prepare
from components.register_model.logic import register
from components.rollback_model.logic import RollbackError, contract_differences, rollback
from components.train_model.logic import train

NAME = "houses"


def make_champion(version: str, reason: str = "", cause: str = "training") -> None:
    """Moves champion as the deploy step does: through the history."""
    history.move_alias(registry.connect(""), NAME, registry.CHAMPION, version, cause=cause, moved_by="test")


def registered(bundle: model_bundle.Bundle) -> str:
    return register("", NAME, bundle.directory, {"r2": 0.5}, True, "approved").version


def registered_file(version: str, name: str) -> Path:
    """A file of a registered version as the local artifact store keeps it."""
    source = registry.connect("").get_model_version(NAME, version).source
    return Path(unquote(urlparse(source).path)) / name


def trained(directory: Path, frame: pd.DataFrame, target: str = "price", task: str = "regression"):
    """A bundle trained on ``frame`` with its data contract, as the pipeline saves one (linear: fast)."""
    prepared = prepare(frame, target=target, task=task, seed=1)
    pipeline, card = train(prepared.train, target=target, task=task, model_type="linear", seed=1)
    model_bundle.save(directory, pipeline, card, {model_bundle.SCHEMA_FILE: model_bundle.schema.infer(frame, target)})
    return model_bundle.load(directory)


def staged(tmp_path: Path, **parameters):
    """rollback() into fresh output paths under ``tmp_path``: (result, model directory, smoke rows path)."""
    model_dir, rows = tmp_path / "model", tmp_path / "smoke_rows"
    parameters = {"deploy_target": "local", **parameters}
    return rollback(NAME, model_dir, rows, **parameters), model_dir, rows


@pytest.fixture
def two_champions(mlflow_state, regression_bundle):
    """v1 then v2 champion, both moves recorded: the state a rollback starts from."""
    bundle, _ = regression_bundle
    for version in (registered(bundle), registered(bundle)):
        make_champion(version)
    return bundle


# --- which version ----------------------------------------------------------------------------------------------


def test_without_a_version_the_previous_champion_is_staged_verified(two_champions, tmp_path):
    result, model_dir, rows = staged(tmp_path, reason="v2 answers slowly")

    assert (result.version, result.champion) == ("1", "2")
    assert result.source == registry.connect("").get_model_version(NAME, "1").source
    assert (result.reason, result.forced) == ("v2 answers slowly", False)
    # The version's own files, loadable (the model file was checked against the registry's digest).
    loaded = model_bundle.load(model_dir, expected_sha256=two_champions.card.sha256)
    assert result.sha256 == loaded.card.sha256
    # The smoke rows are the card's input example, in the model's feature order, as the deploy step reads them.
    smoke = read_dataset(rows)
    assert list(smoke.columns) == loaded.feature_names and len(smoke) == 1
    assert smoke.iloc[0].to_dict() == {name: loaded.card.input_example[name] for name in loaded.feature_names}
    assert result.smoke_rows["rows"] == 1
    # Nothing moved: the deploy step moves champion once the version serves.
    assert str(registry.version_by_alias(registry.connect(""), NAME, registry.CHAMPION).version) == "2"


def test_the_previous_champion_follows_the_history_not_the_version_numbers(mlflow_state, regression_bundle, tmp_path):
    bundle, _ = regression_bundle
    for _ in range(3):
        registered(bundle)
    for version in ("3", "1", "2"):  # v3, then a rollback to v1, then v2
        make_champion(version)

    assert staged(tmp_path)[0].version == "1"


def test_a_second_rollback_steps_further_back_never_to_the_version_rolled_back_from(
    mlflow_state, regression_bundle, tmp_path
):
    bundle, _ = regression_bundle
    for version in ("1", "2", "3"):
        registered(bundle)
        make_champion(version)

    first = staged(tmp_path / "first")[0]
    make_champion(first.version, cause=history.ROLLBACK)  # as the rollback pipeline's deploy step records it
    second = staged(tmp_path / "second")[0]
    make_champion(second.version, cause=history.ROLLBACK)

    assert [(first.champion, first.version), (second.champion, second.version)] == [("3", "2"), ("2", "1")]
    with pytest.raises(
        RollbackError, match=r"no champion before v1: .* \(a rollback is never undone unless the version is named\)"
    ):
        staged(tmp_path / "third")  # v1 was the first champion; v2 is served again only when named
    assert staged(tmp_path / "named", to_version="2")[0].version == "2"


def test_a_named_version_is_staged(two_champions, tmp_path):
    registered(two_champions)  # v3, never champion

    result, _, _ = staged(tmp_path, to_version=" 3 ")

    assert (result.version, result.champion) == ("3", "2")


# --- refusals ---------------------------------------------------------------------------------------------------


def test_an_unknown_model_is_named(mlflow_state, tmp_path):
    with pytest.raises(ValueError, match=f"has no model '{NAME}'"):
        staged(tmp_path)


def test_an_unknown_version_is_named(two_champions, tmp_path):
    with pytest.raises(ValueError, match=f"no version '7' of model '{NAME}'"):
        staged(tmp_path, to_version="7")
    assert not (tmp_path / "model").exists()


def test_no_champion_before_the_current_one_is_refused(mlflow_state, regression_bundle, tmp_path):
    make_champion(registered(regression_bundle[0]))

    with pytest.raises(RollbackError, match=f"history of {NAME} records no champion before v1: name the version"):
        staged(tmp_path)


def test_without_a_champion_an_implicit_rollback_is_refused(mlflow_state, regression_bundle, tmp_path):
    registered(regression_bundle[0])

    with pytest.raises(RollbackError, match=f"{NAME} has no champion: there is nothing to roll back from"):
        staged(tmp_path)


@pytest.mark.parametrize("version", ["2", "02", " 2 "])
def test_the_champion_itself_is_refused(two_champions, tmp_path, version):
    # "02" is MLflow's version 2: before, it passed this check and the history recorded a move to v02.
    with pytest.raises(RollbackError, match=f"{NAME} v2 is already the champion"):
        staged(tmp_path, to_version=version)


@pytest.mark.parametrize("target", ["none", "seldon"])
def test_a_target_that_does_not_serve_is_refused_before_the_registry_is_read(tmp_path, target):
    # No registry exists: the target is judged first.
    error = RollbackError if target == "none" else DeploymentError
    with pytest.raises(error, match=f"deploy_target.*{target!r}"):
        staged(tmp_path, deploy_target=target)


def test_an_unknown_serving_platform_is_refused_before_the_registry_is_read(tmp_path):
    with pytest.raises(DeploymentError, match=r"parameter serving_platform must be one of .*, got 'knative'"):
        staged(tmp_path, serving_platform="knative")


@pytest.mark.parametrize("platform", ["seldon", "kserve"])
def test_kubernetes_checks_the_sources_for_the_platforms_storage_initializer(
    two_champions, tmp_path, monkeypatch, platform
):
    from components.deploy_model import logic as deploy_logic

    checked = []
    monkeypatch.setattr(deploy_logic, "check_cluster_sources", lambda *arguments: checked.append(arguments))

    result, _, _ = staged(tmp_path, deploy_target="kubernetes", serving_platform=platform)

    assert checked == [("", result.source, platform)]


def test_kubernetes_with_a_registry_inside_the_pod_is_refused_before_anything_is_staged(two_champions, tmp_path):
    with pytest.raises(DeploymentError, match="parameter tracking_uri is empty: with deploy_target=kubernetes"):
        staged(tmp_path, deploy_target="kubernetes")
    assert not (tmp_path / "model").exists() and not (tmp_path / "smoke_rows").exists()


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("file_name", [model_bundle.SCHEMA_FILE, model_bundle.MODEL_FILE, model_bundle.CARD_FILE])
def test_a_file_failing_its_digest_is_refused_naming_it_even_with_force(two_champions, tmp_path, file_name, force):
    with registered_file("1", file_name).open("ab") as stream:
        stream.write(b" ")

    with pytest.raises(RollbackError, match="fail their digest checks") as refused:
        staged(tmp_path, force=force)

    message = str(refused.value)
    assert "force cannot override this" in message
    assert f"{NAME} v1" in message and f"/{file_name}" in message and "digest mismatch" in message
    assert not (tmp_path / "smoke_rows").exists()


def test_an_incompatible_data_contract_is_refused_naming_the_differences(two_champions, tmp_path, houses):
    labels = trained(tmp_path / "labels", houses, "energy_label", "classification")
    registered(labels)  # v3

    with pytest.raises(RollbackError) as refused:
        staged(tmp_path / "out", to_version="3")

    message = str(refused.value)
    assert f"refusing to roll {NAME} back to v3: its data contract differs from the champion v2's" in message
    assert "it predicts target 'energy_label', the champion 'price'" in message
    assert "it predicts task 'classification', the champion 'regression'" in message
    assert "force=true rolls back anyway" in message
    assert not (tmp_path / "out" / "smoke_rows").exists()


def test_force_overrides_an_incompatible_contract_and_says_so_in_the_reason(two_champions, tmp_path, houses):
    registered(trained(tmp_path / "labels", houses, "energy_label", "classification"))  # v3

    result, model_dir, rows = staged(tmp_path / "out", to_version="3", force=True, reason="labels are back")

    assert (result.version, result.forced) == ("3", True)
    assert result.reason.startswith("labels are back; forced: its data contract differs from the champion v2's: ")
    assert "it predicts target 'energy_label'" in result.reason
    assert model_bundle.load(model_dir).card.target == "energy_label" and read_dataset(rows).shape[0] == 1


def test_force_on_a_compatible_version_records_nothing_forced(two_champions, tmp_path):
    result, _, _ = staged(tmp_path, force=True, reason="slow")

    assert (result.reason, result.forced) == ("slow", False)


def test_a_champion_whose_contract_fails_its_digest_needs_force_to_roll_away_from(two_champions, tmp_path):
    with registered_file("2", model_bundle.SCHEMA_FILE).open("ab") as stream:
        stream.write(b" ")

    with pytest.raises(RollbackError, match=r"the data contract of the champion v2 cannot be trusted: .*schema\.json"):
        staged(tmp_path / "refused")
    result, _, _ = staged(tmp_path / "forced", force=True)

    assert (result.version, result.forced) == ("1", True)
    assert result.reason.startswith("forced: the data contract of the champion v2 cannot be trusted")


# --- the contract comparison ----------------------------------------------------------------------------------------


def verified(bundle: model_bundle.Bundle, version: str) -> registry.VerifiedVersion:
    return registry.VerifiedVersion(NAME, version, "", {}, bundle.card, dict(bundle.documents), f"{NAME} v{version}")


@pytest.fixture(scope="module")
def small_houses() -> pd.DataFrame:
    return house_prices(rows=300, seed=4)


@pytest.fixture(scope="module")
def served(tmp_path_factory, small_houses) -> model_bundle.Bundle:
    """The champion's bundle the candidates below are compared with."""
    return trained(tmp_path_factory.mktemp("served") / "model", small_houses)


def test_features_added_missing_or_retyped_are_differences(tmp_path, small_houses, served):
    houses = small_houses
    changed = houses.drop(columns=["renovated"]).assign(
        rooms=houses["rooms"].map(lambda rooms: f"{rooms} rooms"), garden=houses["size_sqm"] > 80
    )
    candidate = trained(tmp_path / "candidate", changed)

    differences = contract_differences(verified(served, "2"), verified(candidate, "1"))

    assert differences == [
        "it does not take feature(s) ['renovated'] that the champion takes",
        "it needs feature(s) ['garden'] that the champion does not take",
        "column 'rooms' was numeric (integer) in the reference schema, now categorical (string)",
    ]


def test_the_same_contract_has_no_difference_and_integer_to_float_is_none(tmp_path, small_houses, served):
    houses = small_houses
    candidate = trained(tmp_path / "candidate", houses.assign(rooms=houses["rooms"].astype(float)))

    assert contract_differences(verified(served, "2"), verified(served, "1")) == []
    assert contract_differences(verified(served, "2"), verified(candidate, "1")) == []


def test_without_schemas_the_cards_feature_types_are_compared(tmp_path, small_houses, served):
    houses = small_houses
    candidate = trained(tmp_path / "candidate", houses.assign(rooms=houses["rooms"].astype(str)))
    no_schema = [
        registry.VerifiedVersion(NAME, version, "", {}, bundle.card, {}, "")
        for bundle, version in ((served, "2"), (candidate, "1"))
    ]

    assert contract_differences(*no_schema) == ["feature 'rooms' is categorical, numeric for the champion"]
